"""Login through the HTTP API: cookie, outcomes, durable lockout, rehash, standby refusal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from standby.store.schema import users
from tests.support.identity import PASSWORD, IdSite, identity_site, open_site

LOCKOUT = {"lockout": {"max_failures": 3, "lock_seconds": 300}}


@pytest.fixture
def ids(tmp_path: Path, store_url: str) -> Iterator[IdSite]:
    with identity_site(tmp_path, store_url, LOCKOUT) as s:
        s.tenant()
        yield s


def _hash(ids: IdSite, user_id: str) -> str:
    with ids.store.read() as conn:
        return str(
            conn.execute(select(users.c.password_hash).where(users.c.id == user_id)).scalar()
        )


def test_login_sets_a_session_cookie_and_audits(ids: IdSite) -> None:
    uid = ids.user()
    r = ids.login()
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == uid and r.json()["amr"] == ["pwd"]
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("standby_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/t/acme" in cookie
    assert "Secure" not in cookie  # cookie_secure is off in this config
    assert ids.client.get("/t/acme/session").json()["user_id"] == uid
    events = ids.client.get("/admin/tenants/acme/audit", headers=ids.admin).json()["events"]
    assert [e["action"] for e in events][-1] == "login"
    assert events[-1]["outcome"] == "success"
    metrics = ids.client.get("/metrics").text
    assert 'standby_logins_total{outcome="success"} 1.0' in metrics


def test_secure_cookie_when_configured(tmp_path: Path, store_url: str) -> None:
    with identity_site(tmp_path, store_url, {"http": {"cookie_secure": True}}) as s:
        s.tenant()
        s.user()
        assert "Secure" in s.login().headers["set-cookie"]


def test_wrong_password_and_unknown_user_look_the_same(ids: IdSite) -> None:
    ids.user()
    a = ids.login(password="wrong password!!")
    b = ids.login(username="nobody")
    assert a.status_code == b.status_code == 401
    assert a.json()["error"] == b.json()["error"] == "invalid_credentials"
    events = ids.client.get("/admin/tenants/acme/audit", headers=ids.admin).json()["events"]
    failures = [e for e in events if e["action"] == "login" and e["outcome"] == "failure"]
    assert len(failures) == 2
    assert all(PASSWORD not in str(e) and "wrong password" not in str(e) for e in events)
    assert (
        'standby_logins_total{outcome="invalid_credentials"} 2.0' in ids.client.get("/metrics").text
    )


def test_lockout_after_n_failures_survives_restart_and_expires(ids: IdSite) -> None:
    uid = ids.user()
    assert ids.login(password="wrong-one-1").status_code == 401
    assert ids.login(password="wrong-one-2").status_code == 401
    third = ids.login(password="wrong-one-3")
    assert third.status_code == 423 and third.json()["error"] == "account_locked"
    # locked: even the right password is refused
    assert ids.login().status_code == 423
    actions = [
        e["action"]
        for e in ids.client.get("/admin/tenants/acme/audit", headers=ids.admin).json()["events"]
    ]
    assert actions.count("login.lockout") == 1

    # a restart (a new Site on the same store) keeps the lock: it lives in the users row
    clock = ids.clock
    ids.close()
    again = open_site(ids.config, clock)
    try:
        assert again.login().status_code == 423
        clock.advance(299)
        assert again.login().status_code == 423
        clock.advance(2)
        r = again.login()
        assert r.status_code == 200 and r.json()["user_id"] == uid
    finally:
        again.close()


def test_success_resets_the_failure_count(ids: IdSite) -> None:
    ids.user()
    for _ in range(2):
        assert ids.login(password="wrong-password").status_code == 401
    assert ids.login().status_code == 200
    for _ in range(2):
        assert ids.login(password="wrong-password").status_code == 401
    assert ids.login().status_code == 200  # 4 failures in all, never 3 in a row


def test_admin_unlock(ids: IdSite) -> None:
    uid = ids.user()
    for _ in range(3):
        ids.login(password="wrong-password")
    assert ids.login().status_code == 423
    r = ids.client.patch(
        f"/admin/tenants/acme/users/{uid}", json={"unlock": True}, headers=ids.admin
    )
    assert r.status_code == 200 and r.json()["locked_until"] is None
    assert ids.login().status_code == 200


def test_disabled_user_is_refused_and_loses_sessions(ids: IdSite) -> None:
    uid = ids.user()
    assert ids.login().status_code == 200
    r = ids.client.patch(
        f"/admin/tenants/acme/users/{uid}", json={"disabled": True}, headers=ids.admin
    )
    assert r.status_code == 200
    assert ids.client.get("/t/acme/session").status_code == 401
    r = ids.login()
    assert r.status_code == 403 and r.json()["error"] == "account_disabled"
    assert ids.login(password="wrong-password").status_code == 401  # no hint without the password


def test_rehash_on_login_when_parameters_change(tmp_path: Path, store_url: str) -> None:
    with identity_site(tmp_path, store_url) as s:
        s.tenant()
        uid = s.user()
        old = _hash(s, uid)
        assert "t=1" in old
        clock = s.clock
    # the same store, now configured with a higher time cost
    config = s.config
    text = config.read_text().replace("time_cost: 1", "time_cost: 2")
    config.write_text(text)
    again = open_site(config, clock)
    try:
        assert again.login().status_code == 200
        new = _hash(again, uid)
        assert new != old and "t=2" in new
        assert again.login().status_code == 200
        assert _hash(again, uid) == new  # no rehash once current
    finally:
        again.close()


def test_login_on_a_standby_is_refused_with_503(ids: IdSite) -> None:
    ids.user()
    ids.site.set_role("standby")
    head = ids.head()
    r = ids.login()
    assert r.status_code == 503 and r.json()["error"] == "not_writable"
    assert r.headers["Retry-After"]
    assert ids.login(password="wrong-password").status_code == 503
    assert ids.head() == head


def test_weak_passwords_are_refused(ids: IdSite) -> None:
    head = ids.head()
    for username, password, why in [
        ("bob", "short", "at least"),
        ("bob", "password123", "common"),
        ("bob-the-builder", "bob-the-builder", "username"),
        ("bob", "x" * 300, "shorter"),
    ]:
        r = ids.client.post(
            "/admin/tenants/acme/users",
            json={"username": username, "password": password},
            headers=ids.admin,
        )
        assert r.status_code == 400 and r.json()["error"] == "weak_password", r.text
        assert why in r.json()["message"]
    assert ids.head() == head
