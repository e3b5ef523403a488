"""The signing-key lifecycle as a pure function: observed keys + now + policy -> next actions.

staged (published, not signing) -> active (signing) -> retired (published, not signing)
-> removed (private key destroyed, no longer published). A key is removed only once the
longest token lifetime (plus clock-skew leeway) has passed since it stopped signing, so
every token it signed has expired by then. Carrying the actions out lives in keys.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

STATES = ("staged", "active", "retired", "removed")
PUBLISHED = ("staged", "active", "retired")
US = 1_000_000


@dataclass(frozen=True)
class KeyState:
    kid: str
    state: str
    created_at: int  # UTC microseconds
    activated_at: int | None = None
    retired_at: int | None = None
    removed_at: int | None = None


@dataclass(frozen=True)
class Policy:
    """Times in microseconds. ``rotation`` None: no automatic rotation."""

    max_token_lifetime: int
    rotation: int | None = None
    prepublish: int = 0
    leeway: int = 60 * US

    @property
    def removal_delay(self) -> int:
        return self.max_token_lifetime + self.leeway


@dataclass(frozen=True)
class Action:
    kind: Literal["generate", "activate", "retire", "remove"]
    kid: str | None = None  # None for generate
    activate: bool = False  # generate: activate the new key at once (nothing to sign with)
    reason: str = ""


def removable_at(key: KeyState, policy: Policy) -> int | None:
    """When a key may be removed: staged keys never signed; retired ones wait for expiry."""
    if key.state == "staged":
        return key.created_at
    if key.state == "retired" and key.retired_at is not None:
        return key.retired_at + policy.removal_delay
    return None


def why_not_remove(key: KeyState, now: int, policy: Policy) -> str | None:
    """None if ``key`` may be removed at ``now``; else the reason (for the CLI)."""
    if key.state == "removed":
        return f"key {key.kid} is already removed"
    if key.state == "active":
        return f"key {key.kid} is active; rotate first so another key signs"
    at = removable_at(key, policy)
    if at is None or now < at:
        left = 0 if at is None else (at - now + US - 1) // US
        return (
            f"key {key.kid} signed tokens that may still be valid for {left} s "
            "(longest token lifetime + leeway since retirement)"
        )
    return None


def plan(keys: Iterable[KeyState], now: int, policy: Policy) -> list[Action]:
    """The actions that bring the key set to where the policy wants it at ``now``."""
    keys = list(keys)
    actions: list[Action] = []
    active = sorted(
        (k for k in keys if k.state == "active"), key=lambda k: (k.activated_at or 0, k.kid)
    )
    staged = sorted((k for k in keys if k.state == "staged"), key=lambda k: (k.created_at, k.kid))
    # Two active keys (a race between sites or an operator): keep the newest signing.
    for extra in active[:-1]:
        actions.append(Action("retire", extra.kid, reason="more than one active key"))
    current = active[-1] if active else None
    if current is None:
        if staged:
            actions.append(Action("activate", staged[0].kid, reason="no active key"))
        else:
            actions.append(Action("generate", activate=True, reason="no signing key"))
    elif policy.rotation is not None:
        due = (current.activated_at or current.created_at) + policy.rotation
        ready = [k for k in staged if k.created_at + policy.prepublish <= now]
        if now >= due and ready:
            actions.append(Action("activate", ready[0].kid, reason="scheduled rotation"))
            actions.append(Action("retire", current.kid, reason="scheduled rotation"))
        elif now >= due - policy.prepublish and not staged:
            actions.append(Action("generate", reason="pre-publish the next key"))
    for k in keys:
        if k.state == "retired" and now >= (removable_at(k, policy) or now + 1):
            actions.append(Action("remove", k.kid, reason="every token it signed has expired"))
    return actions


def apply(
    keys: Sequence[KeyState], actions: Iterable[Action], now: int, new_kids: Iterable[str]
) -> list[KeyState]:
    """What the key set looks like after ``actions`` (the model keys.py must match)."""
    out = {k.kid: k for k in keys}
    fresh = iter(new_kids)
    for a in actions:
        if a.kind == "generate":
            kid = next(fresh)
            out[kid] = KeyState(
                kid,
                "active" if a.activate else "staged",
                now,
                activated_at=now if a.activate else None,
            )
        elif a.kind == "activate" and a.kid in out:
            out[a.kid] = replace(out[a.kid], state="active", activated_at=now)
        elif a.kind == "retire" and a.kid in out:
            out[a.kid] = replace(out[a.kid], state="retired", retired_at=now)
        elif a.kind == "remove" and a.kid in out:
            out[a.kid] = replace(out[a.kid], state="removed", removed_at=now)
    return list(out.values())


def published(keys: Iterable[KeyState]) -> list[KeyState]:
    return [k for k in keys if k.state in PUBLISHED]
