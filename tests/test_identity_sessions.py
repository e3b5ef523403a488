"""Server-side sessions: idle and absolute expiry, logout, revocation per session and user.

The site config gives idle_ttl=600 s and absolute_ttl=3600 s (tests.support.sites)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from standby.identity.sessions import SESSION_COOKIE, load_session
from tests.support.identity import IdSite, identity_site


@pytest.fixture
def ids(tmp_path: Path, store_url: str) -> Iterator[IdSite]:
    with identity_site(tmp_path, store_url) as s:
        s.tenant()
        yield s


def _alive(ids: IdSite, client: TestClient | None = None) -> bool:
    r = (client or ids.client).get("/t/acme/session")
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def _second_client(ids: IdSite) -> TestClient:
    other = TestClient(ids.client.app)
    assert (
        other.post(
            "/t/acme/login", json={"username": "alice", "password": "correct horse battery staple"}
        ).status_code
        == 200
    )
    return other


def test_idle_timeout(ids: IdSite) -> None:
    ids.user()
    ids.login()
    ids.clock.advance(599)
    assert _alive(ids)  # and this request refreshes last_seen
    ids.clock.advance(599)
    assert _alive(ids)
    ids.clock.advance(600)
    assert not _alive(ids)
    assert not _alive(ids)  # stays dead


def test_absolute_timeout_despite_activity(ids: IdSite) -> None:
    ids.user()
    ids.login()
    for _ in range(6):  # active every 500 s: never idle
        ids.clock.advance(500)
        assert _alive(ids)
    ids.clock.advance(500)  # 3500 s
    assert _alive(ids)
    ids.clock.advance(100)  # 3600 s: the absolute limit
    assert not _alive(ids)


def test_last_seen_is_written_at_most_once_a_minute(ids: IdSite) -> None:
    ids.user()
    ids.login()
    head = ids.head()
    for _ in range(5):
        ids.clock.advance(10)
        assert _alive(ids)
    assert ids.head() == head  # 50 s: no write
    ids.clock.advance(15)
    assert _alive(ids)
    assert ids.head() == head + 1


def test_a_standby_serves_sessions_without_writing(ids: IdSite) -> None:
    ids.user()
    token = ids.login().cookies[SESSION_COOKIE]
    ids.site.set_role("standby")
    ids.clock.advance(300)
    head = ids.head()
    assert load_session(ids.site, "acme", token) is not None
    assert _alive(ids)
    assert ids.head() == head


def test_logout_revokes_the_session(ids: IdSite) -> None:
    ids.user()
    token = ids.login().cookies[SESSION_COOKIE]
    r = ids.client.post("/t/acme/logout")
    assert r.status_code == 200 and r.json()["logged_out"] is True
    assert load_session(ids.site, "acme", token) is None
    ids.client.cookies.set(SESSION_COOKIE, token, path="/t/acme")
    assert not _alive(ids)  # the old cookie is dead on the server, not just deleted


def test_session_is_bound_to_its_tenant(ids: IdSite) -> None:
    ids.user()
    ids.tenant("other")
    token = ids.login().cookies[SESSION_COOKIE]
    assert load_session(ids.site, "acme", token) is not None
    assert load_session(ids.site, "other", token) is None


def test_admin_revokes_one_session(ids: IdSite) -> None:
    uid = ids.user()
    ids.login()
    other = _second_client(ids)
    sessions = ids.client.get(f"/admin/tenants/acme/users/{uid}/sessions", headers=ids.admin)
    assert len(sessions.json()["sessions"]) == 2
    token = ids.client.cookies[SESSION_COOKIE]
    mine = next(s["id"] for s in sessions.json()["sessions"] if s["id"] != _hash_of(other))
    assert mine == _hash_of_token(token)
    r = ids.client.post(
        f"/admin/tenants/acme/users/{uid}/sessions/revoke",
        json={"session_id": mine},
        headers=ids.admin,
    )
    assert r.status_code == 200 and r.json()["revoked"] == 1
    assert not _alive(ids)
    assert _alive(ids, other)
    other.close()


def test_admin_revokes_every_session_of_a_user(ids: IdSite) -> None:
    uid = ids.user()
    ids.user("bob")
    ids.login()
    other = _second_client(ids)
    bob = TestClient(ids.client.app)
    assert (
        bob.post(
            "/t/acme/login", json={"username": "bob", "password": "correct horse battery staple"}
        ).status_code
        == 200
    )
    r = ids.client.post(f"/admin/tenants/acme/users/{uid}/sessions/revoke", headers=ids.admin)
    assert r.status_code == 200 and r.json()["revoked"] == 2
    assert not _alive(ids) and not _alive(ids, other)
    assert _alive(ids, bob)  # other users keep theirs
    events = ids.client.get("/admin/tenants/acme/audit", headers=ids.admin).json()["events"]
    assert events[-1]["action"] == "session.revoke_all" and events[-1]["detail"]["count"] == 2
    other.close()
    bob.close()


def _hash_of_token(token: str) -> str:
    from standby.identity.tokens import token_hash

    return token_hash(token)


def _hash_of(client: TestClient) -> str:
    return _hash_of_token(client.cookies[SESSION_COOKIE])


def test_revoking_all_sessions_while_they_are_in_use(ids: IdSite) -> None:
    """A revoke-all (many rows) racing session refreshes (one row each) must not deadlock
    on PostgreSQL: every writer takes the change-log lock before any row lock."""
    import threading

    from standby.identity.sessions import create_session, revoke_user_sessions

    uid = ids.user()
    errors: list[BaseException] = []
    for _ in range(5):
        tokens = [create_session(ids.site, "acme", uid, ["pwd"])[0] for _ in range(15)]
        ids.clock.advance(61)  # every load_session below wants to refresh last_seen

        def touch(tokens: list[str] = tokens) -> None:
            try:
                for t in reversed(tokens):
                    load_session(ids.site, "acme", t)
            except BaseException as exc:  # noqa: BLE001 - asserted below
                errors.append(exc)

        def revoke() -> None:
            try:
                revoke_user_sessions(ids.site, "acme", uid, "admin")
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=touch), threading.Thread(target=revoke)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors[0]
        assert all(load_session(ids.site, "acme", t) is None for t in tokens)
