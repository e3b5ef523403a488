"""What the controller wants each traffic server to be (pure): the plan reaches it in one
pass, never leaves traffic nowhere to go on the way, never touches what it should not;
drift is what someone else changed; HAProxy's state bits read as ready / drain / maint."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from standby.cluster.traffic import state as ts
from standby.cluster.traffic.haproxy import admin_state, server_view

NAMES = ["site-a", "site-b", "site-c"]
WEIGHTS = st.sampled_from([0, 10, 25, 50, 90, 100])


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, int], dict[str, ts.ServerView]]:
    """Wanted weights, and what a backend (with or without states) reports."""
    states = draw(st.booleans())
    admin: st.SearchStrategy[ts.AdminState | None] = (
        st.sampled_from(["ready", "drain", "maint"]) if states else st.none()
    )
    known = draw(st.sets(st.sampled_from(NAMES), min_size=1))
    wanted = draw(st.sets(st.sampled_from(NAMES), min_size=1))
    seen = {
        name: ts.ServerView(draw(WEIGHTS), draw(admin), draw(st.sampled_from([None, "up", "down"])))
        for name in sorted(known)
    }
    return {name: draw(WEIGHTS) for name in sorted(wanted)}, seen


def carry_out(
    seen: Mapping[str, ts.ServerView], changes: tuple[ts.Change, ...]
) -> list[dict[str, ts.ServerView]]:
    """Every state the backend passes through while the changes are applied in order."""
    now = dict(seen)
    states = [dict(now)]
    for change in changes:
        view = now[change.site]
        if isinstance(change, ts.SetWeight):
            now[change.site] = ts.ServerView(change.weight, view.admin, view.op)
        else:
            now[change.site] = ts.ServerView(view.weight, change.state, view.op)
        states.append(dict(now))
    return states


def usable(servers: Mapping[str, ts.ServerView]) -> set[str]:
    """Servers that take new (and sticky) clients: weight above 0, not drained or in maint."""
    return {n for n, v in servers.items() if v.weight > 0 and v.admin in (None, "ready")}


def check_plan(weights: dict[str, int], seen: dict[str, ts.ServerView]) -> None:
    """The plan reaches what is wanted in one pass, touching only what it should, and each
    step keeps all the servers usable before it or all those usable after it (every site
    that should take traffic is made ready before any site stops taking it)."""
    changes = ts.plan(weights, seen)
    steps = carry_out(seen, changes)
    final = steps[-1]
    for name, view in final.items():
        if name not in weights:
            assert view == seen[name], "a server the controller does not route to is left alone"
            continue
        assert view.weight == weights[name]
        if seen[name].admin is None:
            assert view.admin is None  # no states on this backend: none are invented
        else:
            assert view.admin == ("ready" if weights[name] > 0 else "maint")
        assert view.op == seen[name].op  # HAProxy's health verdict is its own
    assert ts.plan(weights, final) == ()  # nothing left to do: a tick later holds
    assert {c.site for c in changes} <= set(weights) & set(seen)
    assert ts.unknown(weights, seen) == tuple(sorted(set(weights) - set(seen)))
    before, after = usable(steps[0]), usable(steps[-1])
    for step in steps:
        now = usable(step)
        assert before <= now or after <= now, (before, now, after)
    for change in changes:
        if isinstance(change, ts.SetState):
            assert change.state != "drain"
            assert seen[change.site].admin is not None


def test_plan_every_two_site_case() -> None:
    """Exhaustive for two sites: wanted weights x reported weight and state of each."""
    levels = [0, 10, 100]
    views = [ts.ServerView(w, a) for w in levels for a in (None, "ready", "drain", "maint")]
    for wa, wb in itertools.product(levels, levels):
        for va, vb in itertools.product(views, views):
            if (va.admin is None) != (vb.admin is None):
                continue  # one backend either has states or has not
            check_plan({"site-a": wa, "site-b": wb}, {"site-a": va, "site-b": vb})


@settings(max_examples=150)
@given(cases())
def test_plan_with_three_sites_and_unknown_ones(
    case: tuple[dict[str, int], dict[str, ts.ServerView]],
) -> None:
    check_plan(*case)


def test_failover_failback_and_ramp_orders() -> None:
    a_primary = {"site-a": ts.ServerView(100, "ready"), "site-b": ts.ServerView(0, "maint")}
    # failover to site-b: site-b ready first, site-a leaves last (its sticky clients move)
    assert ts.plan({"site-a": 0, "site-b": 100}, a_primary) == (
        ts.SetState("site-b", "ready"),
        ts.SetWeight("site-b", 100),
        ts.SetWeight("site-a", 0),
        ts.SetState("site-a", "maint"),
    )
    # a ramp step brings the returning site out of maintenance at its share
    b_primary = {"site-a": ts.ServerView(0, "maint"), "site-b": ts.ServerView(100, "ready")}
    assert ts.plan({"site-a": 10, "site-b": 90}, b_primary) == (
        ts.SetState("site-a", "ready"),
        ts.SetWeight("site-a", 10),
        ts.SetWeight("site-b", 90),
    )
    # an operator's maint on the primary is undone; a drained standby goes to maint
    left = {"site-a": ts.ServerView(100, "maint"), "site-b": ts.ServerView(0, "drain")}
    assert ts.plan({"site-a": 100, "site-b": 0}, left) == (
        ts.SetState("site-a", "ready"),
        ts.SetState("site-b", "maint"),
    )
    # the builtin router: weights only
    router = {"site-a": ts.ServerView(100), "site-b": ts.ServerView(0)}
    assert ts.plan({"site-a": 0, "site-b": 100}, router) == (
        ts.SetWeight("site-b", 100),
        ts.SetWeight("site-a", 0),
    )


def test_wanted() -> None:
    assert ts.wanted({"a": 100, "b": 0}, states=True) == {
        "a": ts.ServerView(100, "ready"),
        "b": ts.ServerView(0, "maint"),
    }
    assert ts.wanted({"a": 100, "b": 0}, states=False) == {
        "a": ts.ServerView(100),
        "b": ts.ServerView(0),
    }


@settings(max_examples=100)
@given(cases(), st.booleans())
def test_drift_is_what_differs_from_what_was_set(
    case: tuple[dict[str, int], dict[str, ts.ServerView]], states: bool
) -> None:
    weights, seen = case
    applied = ts.wanted(weights, states)
    drift = ts.drifted(applied, seen)
    for name, mine in applied.items():
        view = seen.get(name)
        differs = view is not None and (
            view.weight != mine.weight or (states and view.admin != mine.admin)
        )
        assert (name in drift) == differs
        if differs:
            assert drift[name] == (mine, view)
    # what the controller set, as the backend reports it with its own health: no drift
    same = {n: ts.ServerView(v.weight, v.admin, "down") for n, v in applied.items()}
    assert ts.drifted(applied, same) == {}


@pytest.mark.parametrize(
    ("flags", "state"),
    [
        ("0", "ready"),
        ("1", "maint"),  # set server state maint
        ("4", "ready"),  # started `disabled` by the config, then set ready
        ("5", "maint"),  # `disabled` in the config
        ("8", "drain"),
        ("12", "drain"),
        ("2", "maint"),  # inherited from a tracked server
        ("32", "maint"),  # DNS resolution
        ("16", "drain"),  # inherited drain
        ("", "ready"),
    ],
)
def test_haproxy_admin_state_bits(flags: str, state: str) -> None:
    assert admin_state(flags) == state


def test_haproxy_server_view() -> None:
    row = {"srv_name": "site-b", "srv_op_state": "0", "srv_admin_state": "1", "srv_uweight": "0"}
    assert server_view(row) == ts.ServerView(0, "maint", "down")
    row = {"srv_op_state": "2", "srv_admin_state": "0", "srv_uweight": "100"}
    assert server_view(row) == ts.ServerView(100, "ready", "up")
