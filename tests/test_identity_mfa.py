"""TOTP enrolment, replay protection and recovery codes, through the HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from standby.store.schema import recovery_codes, users
from tests.support.identity import IdSite, identity_site


@pytest.fixture
def ids(tmp_path: Path, store_url: str) -> Iterator[IdSite]:
    with identity_site(tmp_path, store_url, {"lockout": {"max_failures": 20}}) as s:
        s.tenant()
        yield s


def _enrol(ids: IdSite) -> tuple[str, pyotp.TOTP, list[str]]:
    uid = ids.user()
    assert ids.login().status_code == 200
    r = ids.client.post("/t/acme/mfa/totp/enroll")
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    assert r.json()["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={secret}" in r.json()["otpauth_uri"]
    totp = pyotp.TOTP(secret)
    r = ids.client.post("/t/acme/mfa/totp/confirm", json={"code": totp.at(ids.clock.seconds)})
    assert r.status_code == 200, r.text
    codes = r.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    ids.client.cookies.clear()
    return uid, totp, codes


def _other(code: str) -> str:
    """A six-digit code that is not ``code``."""
    return str((int(code) + 1) % 1_000_000).zfill(6)


def test_enrolment_needs_a_session(ids: IdSite) -> None:
    r = ids.client.post("/t/acme/mfa/totp/enroll")
    assert r.status_code == 401 and r.json()["error"] == "no_session"


def test_confirm_with_a_wrong_code_keeps_totp_off(ids: IdSite) -> None:
    ids.user()
    ids.login()
    secret = ids.client.post("/t/acme/mfa/totp/enroll").json()["secret"]
    wrong = _other(pyotp.TOTP(secret).at(ids.clock.seconds))
    r = ids.client.post("/t/acme/mfa/totp/confirm", json={"code": wrong})
    assert r.status_code == 400 and r.json()["error"] == "invalid_code"
    assert ids.login().json()["amr"] == ["pwd"]  # still password-only


def test_totp_secret_is_sealed_at_rest(ids: IdSite) -> None:
    uid, totp, _ = _enrol(ids)
    with ids.store.read() as conn:
        sealed = conn.execute(select(users.c.totp_secret).where(users.c.id == uid)).scalar()
    assert sealed and sealed.startswith("gcm1:") and totp.secret not in sealed


def test_login_requires_totp_and_a_code_is_accepted_once(ids: IdSite) -> None:
    uid, totp, _ = _enrol(ids)
    r = ids.login()
    assert r.status_code == 401 and r.json()["error"] == "mfa_required"
    ids.clock.advance(30)  # the enrolment code's step is spent; use the next one
    code = totp.at(ids.clock.seconds)
    r = ids.login(totp=code)
    assert r.status_code == 200 and r.json()["amr"] == ["pwd", "otp"]
    head = ids.head()
    replay = ids.login(totp=code)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_credentials"
    assert ids.head() > head  # the refused attempt is audited and counted
    # an earlier step (within the drift window) is also refused once a later one was used
    assert ids.login(totp=totp.at(ids.clock.seconds - 30)).status_code == 401
    ids.clock.advance(30)
    assert ids.login(totp=totp.at(ids.clock.seconds)).status_code == 200
    # the last accepted step lives in the users row (so it replicates and survives restarts)
    with ids.store.read() as conn:
        last = conn.execute(select(users.c.totp_last_step).where(users.c.id == uid)).scalar()
    assert last == int(ids.clock.seconds) // 30


def test_wrong_totp_counts_towards_lockout(tmp_path: Path, store_url: str) -> None:
    with identity_site(tmp_path, store_url, {"lockout": {"max_failures": 2}}) as s:
        s.tenant()
        _, totp, _ = _enrol(s)
        s.clock.advance(30)
        assert (
            s.login(totp="000000" if totp.at(s.clock.seconds) != "000000" else "111111").status_code
            == 401
        )
        r = s.login(totp="999999" if totp.at(s.clock.seconds) != "999999" else "111111")
        assert r.status_code == 423


def test_recovery_codes_are_single_use(ids: IdSite) -> None:
    uid, _, codes = _enrol(ids)
    r = ids.login(recovery_code=codes[0])
    assert r.status_code == 200 and r.json()["amr"] == ["pwd", "mfa"]
    again = ids.login(recovery_code=codes[0])
    assert again.status_code == 401
    # formatting is forgiving (upper case, no dashes) but each code still works once
    assert ids.login(recovery_code=codes[1].upper().replace("-", "")).status_code == 200
    assert ids.login(recovery_code=codes[1]).status_code == 401
    assert ids.login(recovery_code="aaaa-bbbb-cccc-dddd").status_code == 401
    with ids.store.read() as conn:
        stored = list(conn.execute(select(recovery_codes).where(recovery_codes.c.user_id == uid)))
    assert len(stored) == 10 and sum(r.used_at is not None for r in stored) == 2
    assert not any(c in str(stored) or c.replace("-", "") in str(stored) for c in codes)


def test_admin_can_reset_mfa(ids: IdSite) -> None:
    uid, _, _ = _enrol(ids)
    r = ids.client.delete(f"/admin/tenants/acme/users/{uid}/mfa", headers=ids.admin)
    assert r.status_code == 200
    assert ids.login().json()["amr"] == ["pwd"]
    actions = [
        e["action"]
        for e in ids.client.get("/admin/tenants/acme/audit", headers=ids.admin).json()["events"]
    ]
    assert "mfa.reset" in actions and "mfa.totp.confirm" in actions


def test_recovery_codes_can_be_replaced_from_an_mfa_session(ids: IdSite) -> None:
    _, totp, old = _enrol(ids)
    ids.login()  # password only: mfa_required, no session
    assert ids.client.post("/t/acme/mfa/recovery-codes").status_code == 401
    ids.clock.advance(30)
    assert ids.login(totp=totp.at(ids.clock.seconds)).status_code == 200
    r = ids.client.post("/t/acme/mfa/recovery-codes")
    assert r.status_code == 200, r.text
    new = r.json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    assert ids.login(recovery_code=old[0]).status_code == 401  # the old set is gone
    assert ids.login(recovery_code=new[0]).status_code == 200
