"""What each traffic server should be, given the weights the controller decided and what
the backend reports: pure, so every combination is tested (tests/test_traffic_state.py).

HAProxy keeps sending a client that holds its sticky cookie to a server of weight 0, and
to one in ``drain``; only ``maint`` makes it ignore the cookie, choose another server
and re-pin the client there (checked on HAProxy 2.6). So a site that should take no
traffic is put in ``maint`` and one that should, in ``ready``; ``drain`` is never
wanted. Backends without server states (the builtin router, which already re-pins a
client whose site has weight 0) report ``admin=None`` and get weights only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

AdminState = Literal["ready", "drain", "maint"]


@dataclass(frozen=True)
class ServerView:
    """One site as the traffic backend reports it."""

    weight: int
    admin: AdminState | None = None  # None: the backend has no server states
    op: str | None = None  # the backend's own health verdict: up, down, starting, stopping


@dataclass(frozen=True)
class SetWeight:
    site: str
    weight: int


@dataclass(frozen=True)
class SetState:
    site: str
    state: AdminState


Change = SetWeight | SetState


def wanted_state(weight: int) -> AdminState:
    """``ready`` for a site that should take traffic, else ``maint`` (so no sticky client
    stays on it)."""
    return "ready" if weight > 0 else "maint"


def wanted(weights: Mapping[str, int], states: bool) -> dict[str, ServerView]:
    """The whole state the controller wants, per site (``states``: the backend has them)."""
    return {
        site: ServerView(weight, wanted_state(weight) if states else None)
        for site, weight in weights.items()
    }


def plan(weights: Mapping[str, int], seen: Mapping[str, ServerView]) -> tuple[Change, ...]:
    """The changes that bring ``seen`` to ``weights`` (and the states they imply), ordered
    so traffic always has somewhere to go: first every site that should take traffic
    (ready, then its weight), then the others (weight, then maint). Sites the backend
    does not know are left out (see ``unknown``); sites it knows beyond ``weights`` are
    left alone."""
    taking: list[Change] = []
    leaving: list[Change] = []
    for site in sorted(weights):
        view = seen.get(site)
        if view is None:
            continue
        weight = weights[site]
        state = wanted_state(weight)
        set_state: list[Change] = [SetState(site, state)] if view.admin not in (None, state) else []
        set_weight: list[Change] = [SetWeight(site, weight)] if view.weight != weight else []
        if state == "ready":
            taking += set_state + set_weight
        else:
            leaving += set_weight + set_state
    return (*taking, *leaving)


def unknown(weights: Mapping[str, object], seen: Mapping[str, ServerView]) -> tuple[str, ...]:
    """Sites the controller wants to route to that the backend has no server for (its
    config was written for another topology)."""
    return tuple(sorted(set(weights) - set(seen)))


def drifted(
    applied: Mapping[str, ServerView], seen: Mapping[str, ServerView]
) -> dict[str, tuple[ServerView, ServerView]]:
    """Sites whose weight or state is not what the controller last set: someone else
    changed them (an operator on the admin socket), or the backend restarted from its
    config. Maps site -> (what the controller set, what the backend reports); the
    backend's own health verdict is not compared."""
    out: dict[str, tuple[ServerView, ServerView]] = {}
    for site, mine in applied.items():
        view = seen.get(site)
        if view is None:
            continue
        if view.weight != mine.weight or (mine.admin is not None and view.admin != mine.admin):
            out[site] = (mine, view)
    return out
