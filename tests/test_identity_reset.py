"""Password reset tokens: issued once by an admin, hashed at rest, single use, expiring."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.identity import IdSite, identity_site

NEW = "a brand new passphrase"


@pytest.fixture
def ids(tmp_path: Path, store_url: str) -> Iterator[IdSite]:
    with identity_site(tmp_path, store_url, {"lockout": {"max_failures": 2}}) as s:
        s.tenant()
        yield s


def _issue(ids: IdSite, uid: str, ttl: int | None = None) -> str:
    body = {"ttl": ttl} if ttl else None
    r = ids.client.post(
        f"/admin/tenants/acme/users/{uid}/reset-token", json=body, headers=ids.admin
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _redeem(ids: IdSite, token: str, password: str = NEW):  # type: ignore[no-untyped-def]
    return ids.client.post(
        "/t/acme/password/reset", json={"token": token, "new_password": password}
    )


def test_reset_sets_the_password_unlocks_and_revokes_sessions(ids: IdSite) -> None:
    uid = ids.user()
    ids.login()
    for _ in range(2):
        ids.login(password="wrong-password")
    assert ids.login().status_code == 423
    token = _issue(ids, uid)
    assert token not in "".join(ids.payloads())
    r = _redeem(ids, token)
    assert r.status_code == 200, r.text
    assert ids.client.get("/t/acme/session").status_code == 401  # old session revoked
    assert ids.login().status_code == 401  # old password gone
    assert ids.login(password=NEW).status_code == 200  # and the lockout cleared
    actions = [
        e["action"]
        for e in ids.client.get("/admin/tenants/acme/audit", headers=ids.admin).json()["events"]
    ]
    assert "user.reset_token" in actions and "user.reset_password" in actions


def test_a_token_works_once(ids: IdSite) -> None:
    uid = ids.user()
    token = _issue(ids, uid)
    assert _redeem(ids, token).status_code == 200
    head = ids.head()
    again = _redeem(ids, token, "yet another passphrase")
    assert again.status_code == 400 and again.json()["error"] == "invalid_token"
    assert ids.head() == head
    assert ids.login(password=NEW).status_code == 200


def test_a_token_expires(ids: IdSite) -> None:
    uid = ids.user()
    token = _issue(ids, uid, ttl=600)
    ids.clock.advance(600)
    head = ids.head()
    r = _redeem(ids, token)
    assert r.status_code == 400 and r.json()["error"] == "invalid_token"
    assert ids.head() == head
    assert ids.login().status_code == 200  # the old password still works


def test_weak_password_keeps_the_token_and_unknown_tokens_fail(ids: IdSite) -> None:
    uid = ids.user()
    token = _issue(ids, uid)
    head = ids.head()
    weak = _redeem(ids, token, "alice")
    assert weak.status_code == 400 and weak.json()["error"] == "weak_password"
    assert _redeem(ids, "not-a-token").json()["error"] == "invalid_token"
    assert ids.head() == head
    assert _redeem(ids, token).status_code == 200


def test_a_token_is_bound_to_its_tenant(ids: IdSite) -> None:
    uid = ids.user()
    ids.tenant("other")
    token = _issue(ids, uid)
    r = ids.client.post("/t/other/password/reset", json={"token": token, "new_password": NEW})
    assert r.status_code == 400 and r.json()["error"] == "invalid_token"
