"""The pure decisions of the identity core, checked over many inputs (no store)."""

from __future__ import annotations

import pyotp
from hypothesis import given
from hypothesis import strategies as st

from standby.identity import lockout
from standby.identity.clock import US
from standby.identity.mfa import matching_step
from standby.identity.reset import token_usable
from standby.identity.sessions import session_state
from standby.settings import LockoutSettings

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@given(
    max_failures=st.integers(1, 10),
    lock_seconds=st.integers(1, 3600),
    outcomes=st.lists(st.booleans(), max_size=40),
)
def test_lockout_locks_after_exactly_n_consecutive_failures(
    max_failures: int, lock_seconds: int, outcomes: list[bool]
) -> None:
    """Replaying a sequence of login outcomes (True = right password) one second apart."""
    settings = LockoutSettings(max_failures=max_failures, lock_seconds=lock_seconds)
    row: dict[str, object] = {"failed_logins": 0, "locked_until": None}
    streak = 0
    at = 0
    for ok in outcomes:
        at += US
        if lockout.is_locked(row, at):
            continue  # refused without looking at the password; nothing counted
        if ok:
            row.update(lockout.after_success(row))
            streak = 0
            assert row["failed_logins"] == 0 and row["locked_until"] is None
        else:
            streak += 1
            row.update(lockout.after_failure(row, at, settings))
            if streak == max_failures:
                assert row["locked_until"] == at + lock_seconds * US
                assert lockout.is_locked(row, at + lock_seconds * US - 1)
                assert not lockout.is_locked(row, at + lock_seconds * US)
                streak = 0
            else:
                assert row["failed_logins"] == streak


@given(
    created=st.integers(0, 10**12),
    seen_after=st.integers(0, 10**10),
    probe_after=st.integers(0, 10**11),
    idle=st.integers(60, 10**5),
    absolute=st.integers(60, 10**6),
    revoked=st.booleans(),
)
def test_session_state(
    created: int, seen_after: int, probe_after: int, idle: int, absolute: int, revoked: bool
) -> None:
    row = {
        "created_at": created,
        "last_seen": created + seen_after,
        "expires_at": created + absolute * US,
        "revoked_at": created if revoked else None,
    }
    at = created + seen_after + probe_after
    state = session_state(row, at, idle)
    if revoked:
        assert state == "revoked"
    elif at >= row["expires_at"]:
        assert state == "expired"
    elif probe_after >= idle * US:
        assert state == "idle"
    else:
        assert state == "active"


@given(step=st.integers(10**6, 10**8), offset_us=st.integers(0, 30 * US - 1))
def test_a_totp_step_is_accepted_once_and_never_an_earlier_one(step: int, offset_us: int) -> None:
    totp = pyotp.TOTP(SECRET)
    at = step * 30 * US + offset_us
    code = totp.generate_otp(step)
    assert matching_step(SECRET, code, at, None) is not None
    accepted = matching_step(SECRET, code, at, step - 5)
    assert accepted is not None
    assert matching_step(SECRET, code, at, accepted) is None  # replay
    old = totp.generate_otp(step - 2)
    if old not in {totp.generate_otp(s) for s in (step - 1, step, step + 1)}:  # 6 digits collide
        assert matching_step(SECRET, old, at, None) is None  # too old
    assert matching_step(SECRET, "12345", at, None) is None
    assert matching_step(SECRET, "abcdef", at, None) is None


@given(
    expires_in=st.integers(-(10**9), 10**9),
    used=st.booleans(),
    same_tenant=st.booleans(),
)
def test_reset_token_usable(expires_in: int, used: bool, same_tenant: bool) -> None:
    at = 10**15
    row = {
        "tenant": "acme" if same_tenant else "other",
        "used_at": at - 1 if used else None,
        "expires_at": at + expires_in,
    }
    assert token_usable(row, "acme", at) == (same_tenant and not used and expires_in > 0)
    assert not token_usable(None, "acme", at)
