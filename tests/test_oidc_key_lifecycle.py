"""The signing-key lifecycle decision, tested exhaustively over generated key sets."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from standby.identity import key_lifecycle as lc

US = lc.US
HOUR = 3600 * US
POLICY = lc.Policy(max_token_lifetime=600 * US, rotation=24 * HOUR, prepublish=2 * HOUR)


@st.composite
def key_sets(draw: st.DrawFn) -> tuple[list[lc.KeyState], int]:
    now = draw(st.integers(min_value=10 * 24 * HOUR, max_value=20 * 24 * HOUR))
    keys = []
    for i in range(draw(st.integers(min_value=0, max_value=6))):
        state = draw(st.sampled_from(lc.STATES))
        created = now - draw(st.integers(min_value=0, max_value=5 * 24 * HOUR))
        activated = retired = removed = None
        if state in ("active", "retired", "removed"):
            activated = created + draw(st.integers(min_value=0, max_value=now - created))
        if state in ("retired", "removed"):
            assert activated is not None
            retired = activated + draw(st.integers(min_value=0, max_value=now - activated))
        if state == "removed":
            assert retired is not None
            removed = retired + POLICY.removal_delay
        keys.append(lc.KeyState(f"k{i}", state, created, activated, retired, removed))
    return keys, now


def step(keys: list[lc.KeyState], now: int, policy: lc.Policy = POLICY) -> list[lc.KeyState]:
    fresh = (f"new{i}-{now}" for i in itertools.count())
    return lc.apply(keys, lc.plan(keys, now, policy), now, fresh)


@settings(max_examples=200, deadline=None)
@given(key_sets())
def test_after_one_step_exactly_one_key_signs(case: tuple[list[lc.KeyState], int]) -> None:
    keys, now = case
    after = step(keys, now)
    assert sum(k.state == "active" for k in after) == 1


@settings(max_examples=200, deadline=None)
@given(key_sets())
def test_never_removes_a_key_that_may_have_signed_an_unexpired_token(
    case: tuple[list[lc.KeyState], int],
) -> None:
    keys, now = case
    for action in lc.plan(keys, now, POLICY):
        if action.kind == "remove":
            key = next(k for k in keys if k.kid == action.kid)
            assert key.state == "retired"
            assert key.retired_at is not None
            # every token it signed expired at the latest retired_at + max lifetime
            assert now >= key.retired_at + POLICY.max_token_lifetime + POLICY.leeway


@settings(max_examples=200, deadline=None)
@given(key_sets())
def test_a_step_is_a_fixpoint_at_the_same_instant(case: tuple[list[lc.KeyState], int]) -> None:
    keys, now = case
    after = step(keys, now)
    assert lc.plan(after, now, POLICY) == []


@settings(max_examples=200, deadline=None)
@given(key_sets())
def test_a_staged_key_signs_only_after_the_prepublish_lead_time(
    case: tuple[list[lc.KeyState], int],
) -> None:
    keys, now = case
    has_active = any(k.state == "active" for k in keys)
    for action in lc.plan(keys, now, POLICY):
        if action.kind == "activate" and has_active:
            key = next(k for k in keys if k.kid == action.kid)
            assert key.created_at + POLICY.prepublish <= now


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=30), st.integers(min_value=1, max_value=9))
def test_sixty_days_of_hourly_scheduling(days: int, prepublish_h: int) -> None:
    """Run the plan hourly for sixty days: exactly one key signs, and it was published
    for the lead time before signing; keys are removed only after the removal delay;
    published keys never pile up."""
    policy = lc.Policy(
        max_token_lifetime=HOUR, rotation=days * 24 * HOUR, prepublish=prepublish_h * HOUR
    )
    now = 0
    keys = step([], now, policy)
    first_published: dict[str, int] = {k.kid: now for k in keys}
    for _ in range(60 * 24):
        now += HOUR
        keys = step(keys, now, policy)
        for k in keys:
            first_published.setdefault(k.kid, now)
        active = [k for k in keys if k.state == "active"]
        assert len(active) == 1
        a = active[0]
        if a.activated_at and a.activated_at > 0:
            assert a.activated_at - first_published[a.kid] >= policy.prepublish
        for k in keys:
            if k.state == "removed":
                assert k.retired_at is not None and k.removed_at is not None
                assert k.removed_at - k.retired_at >= policy.removal_delay
        assert len(lc.published(keys)) <= 3


def test_no_keys_bootstraps_an_active_key() -> None:
    assert lc.plan([], 0, POLICY) == [lc.Action("generate", activate=True, reason="no signing key")]


def test_why_not_remove_names_the_wait() -> None:
    k = lc.KeyState("a", "retired", 0, 0, retired_at=100 * US)
    why = lc.why_not_remove(k, 100 * US, POLICY)
    assert why is not None and "660 s" in why
    assert lc.why_not_remove(k, 100 * US + POLICY.removal_delay, POLICY) is None
    assert "active" in (lc.why_not_remove(lc.KeyState("b", "active", 0, 0), 0, POLICY) or "")
