"""Revocation is complete: every way a session or a user's access ends (logout, password
change or reset, an admin revoking sessions, disabling or deleting the user) stops the
refresh and access tokens issued under it; a replayed code or refresh token revokes the
access tokens of its family; introspection tells only the token's client and its
resource servers; userinfo without a token gets a bare Bearer challenge.
In-process (TestClient) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.identity import PASSWORD, IdSite
from tests.support.oidc import (
    authorize,
    basic,
    exchange,
    introspect,
    login_for_code,
    machine_client,
    make_client,
    oidc_site,
    query_of,
    refresh,
    submit,
    userinfo_status,
)

NEW_PASSWORD = "another correct horse battery"


@pytest.fixture
def ids(tmp_path: Path, store_url: str) -> Iterator[IdSite]:
    with oidc_site(tmp_path, store_url, "alice", "bob") as s:
        yield s


def first_party(ids: IdSite, **extra: Any) -> dict[str, Any]:
    return make_client(
        ids, grant_types=["authorization_code", "refresh_token"], first_party=True, **extra
    )


def tokens_for(ids: IdSite, client: dict[str, Any], user: str) -> dict[str, Any]:
    """Sign ``user`` in on the hosted page (a fresh browser) and redeem the code."""
    ids.client.cookies.clear()
    code = login_for_code(ids, client["client_id"], user=user)["code"]
    r = exchange(ids, client, code)
    assert r.status_code == 200, r.text
    return dict(r.json())


def alive(ids: IdSite, client: dict[str, Any], tokens: dict[str, Any]) -> dict[str, bool]:
    """Which of a token response's parts still work."""
    return {
        "access": introspect(ids, client, tokens["access_token"])["active"],
        "userinfo": userinfo_status(ids, tokens["access_token"]) == 200,
        "refresh_listed": introspect(ids, client, tokens["refresh_token"])["active"],
    }


ALL = {"access": True, "userinfo": True, "refresh_listed": True}
NONE = {"access": False, "userinfo": False, "refresh_listed": False}


def _user_id(ids: IdSite, username: str) -> str:
    r = ids.client.get("/admin/tenants/acme/users", headers=ids.admin)
    return str(next(u["id"] for u in r.json()["users"] if u["username"] == username))


def _logout(ids: IdSite, uid: str) -> None:
    # alice's browser (the cookie jar holds her session: she signed in last)
    assert ids.client.post("/t/acme/logout").json()["logged_out"] is True


def _end_session(ids: IdSite, uid: str) -> None:
    # RP-initiated logout, confirmed on the page in alice's browser
    done = submit(ids, ids.client.get("/t/acme/end-session"))
    assert done.status_code == 200 and "signed out" in done.text


def _password(ids: IdSite, uid: str) -> None:
    r = ids.client.post(
        f"/admin/tenants/acme/users/{uid}/password",
        json={"password": NEW_PASSWORD},
        headers=ids.admin,
    )
    assert r.status_code == 200, r.text


def _reset(ids: IdSite, uid: str) -> None:
    r = ids.client.post(f"/admin/tenants/acme/users/{uid}/reset-token", headers=ids.admin)
    assert r.status_code == 201, r.text
    done = ids.client.post(
        "/t/acme/password/reset", json={"token": r.json()["token"], "new_password": NEW_PASSWORD}
    )
    assert done.status_code == 200, done.text


def _revoke_all(ids: IdSite, uid: str) -> None:
    r = ids.client.post(f"/admin/tenants/acme/users/{uid}/sessions/revoke", headers=ids.admin)
    assert r.status_code == 200 and r.json()["revoked"] >= 1, r.text


def _revoke_one(ids: IdSite, uid: str) -> None:
    listed = ids.client.get(f"/admin/tenants/acme/users/{uid}/sessions", headers=ids.admin)
    (session,) = listed.json()["sessions"]
    r = ids.client.post(
        f"/admin/tenants/acme/users/{uid}/sessions/revoke",
        json={"session_id": session["id"]},
        headers=ids.admin,
    )
    assert r.json() == {"revoked": 1}, r.text


def _disable(ids: IdSite, uid: str) -> None:
    r = ids.client.patch(
        f"/admin/tenants/acme/users/{uid}", json={"disabled": True}, headers=ids.admin
    )
    assert r.status_code == 200, r.text


def _delete(ids: IdSite, uid: str) -> None:
    r = ids.client.delete(f"/admin/tenants/acme/users/{uid}", headers=ids.admin)
    assert r.status_code == 200, r.text


ENDINGS: dict[str, Callable[[IdSite, str], None]] = {
    "logout": _logout,
    "end-session": _end_session,
    "password change": _password,
    "password reset": _reset,
    "admin revokes all sessions": _revoke_all,
    "admin revokes the session": _revoke_one,
    "disable": _disable,
    "delete": _delete,
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_ending_access_revokes_the_tokens_issued_under_it(ids: IdSite, ending: str) -> None:
    app = first_party(ids)
    # a client without refresh tokens: its access token is tied to the session only
    plain = make_client(ids, grant_types=["authorization_code"], first_party=True)
    bob = tokens_for(ids, app, "bob")
    alice = tokens_for(ids, app, "alice")
    silent = authorize(ids, plain["client_id"])  # alice's browser: her session, no page
    code = query_of(silent.headers["location"])["code"]
    alone = exchange(ids, plain, code).json()
    assert "refresh_token" not in alone and introspect(ids, plain, alone["access_token"])["active"]
    rotated = refresh(ids, app, alice["refresh_token"])  # a second access token, same family
    assert rotated.status_code == 200, rotated.text
    alice2 = rotated.json()
    assert alive(ids, app, alice2) == ALL

    ENDINGS[ending](ids, _user_id(ids, "alice"))

    for tokens in (alice, alice2):  # every access token of the session, by any route
        assert introspect(ids, app, tokens["access_token"]) == {"active": False}
        assert userinfo_status(ids, tokens["access_token"]) == 401
    assert alive(ids, app, alice2) == NONE
    assert introspect(ids, plain, alone["access_token"]) == {"active": False}
    assert userinfo_status(ids, alone["access_token"]) == 401
    again = refresh(ids, app, alice2["refresh_token"])
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
    assert alive(ids, app, bob) == ALL  # another user's tokens are untouched
    if ending not in ("disable", "delete"):  # alice can sign in again and gets new tokens
        ids.client.cookies.clear()
        password = PASSWORD if "password" not in ending else NEW_PASSWORD
        assert ids.login(password=password).status_code == 200


def test_a_replayed_code_revokes_the_access_tokens_of_its_family(ids: IdSite) -> None:
    app = first_party(ids)
    ids.client.cookies.clear()
    code = login_for_code(ids, app["client_id"])["code"]
    first = exchange(ids, app, code).json()
    later = refresh(ids, app, first["refresh_token"]).json()  # issued after the code
    assert alive(ids, app, later) == ALL
    replay = exchange(ids, app, code)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    for tokens in (first, later):
        assert introspect(ids, app, tokens["access_token"]) == {"active": False}
        assert userinfo_status(ids, tokens["access_token"]) == 401
    assert refresh(ids, app, later["refresh_token"]).json()["error"] == "invalid_grant"


def test_a_replayed_refresh_token_revokes_the_access_tokens_of_its_family(ids: IdSite) -> None:
    app = first_party(ids)
    first = tokens_for(ids, app, "alice")
    second = refresh(ids, app, first["refresh_token"]).json()
    third = refresh(ids, app, second["refresh_token"]).json()
    other = tokens_for(ids, app, "alice")  # another family of the same user and client
    assert alive(ids, app, third) == ALL
    reuse = refresh(ids, app, first["refresh_token"])
    assert (reuse.status_code, reuse.json()["error"]) == (400, "invalid_grant")
    for tokens in (first, second, third):
        assert introspect(ids, app, tokens["access_token"]) == {"active": False}
        assert userinfo_status(ids, tokens["access_token"]) == 401
    assert alive(ids, app, other) == ALL


def test_revoking_a_refresh_token_revokes_its_access_tokens(ids: IdSite) -> None:
    """RFC 7009 2.1: revoking a refresh token also invalidates the access tokens
    issued from the same grant."""
    app = first_party(ids)
    tokens = tokens_for(ids, app, "alice")
    r = ids.client.post(
        "/t/acme/revoke",
        data={"token": tokens["refresh_token"]},
        headers=basic(app["client_id"], app["client_secret"]),
    )
    assert r.status_code == 200
    assert alive(ids, app, tokens) == NONE


def test_introspection_tells_only_the_client_and_its_resource_servers(ids: IdSite) -> None:
    rs = machine_client(ids)
    stranger = machine_client(ids)
    app = first_party(ids, resource_servers=[rs["client_id"]])
    other_app = first_party(ids)
    tokens = tokens_for(ids, app, "alice")
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert introspect(ids, app, token)["active"] is True
        assert introspect(ids, rs, token)["active"] is True
        assert introspect(ids, stranger, token) == {"active": False}
        assert introspect(ids, other_app, token) == {"active": False}
    # a machine token: the same rule
    cc = ids.client.post(
        "/t/acme/token",
        data={"grant_type": "client_credentials"},
        headers=basic(stranger["client_id"], stranger["client_secret"]),
    ).json()["access_token"]
    assert introspect(ids, stranger, cc)["active"] is True
    assert introspect(ids, rs, cc) == {"active": False}
    # resource servers are set through the admin API, and must be clients of the tenant
    path = f"/admin/tenants/acme/clients/{stranger['client_id']}"
    r = ids.client.patch(path, json={"resource_servers": [rs["client_id"]]}, headers=ids.admin)
    assert r.status_code == 200 and r.json()["resource_servers"] == [rs["client_id"]]
    assert introspect(ids, rs, cc)["active"] is True
    head = ids.head()
    typo = {"resource_servers": ["no-such-client"]}
    bad = ids.client.patch(path, json=typo, headers=ids.admin)
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_client_metadata")
    body = {"name": "x", "grant_types": ["client_credentials"], **typo}
    created = ids.client.post("/admin/tenants/acme/clients", json=body, headers=ids.admin)
    assert (created.status_code, created.json()["error"]) == (400, "invalid_client_metadata")
    assert ids.head() == head


def test_userinfo_without_a_token_gets_a_bare_challenge(ids: IdSite) -> None:
    """RFC 6750 3.1: no credentials -> 401, ``WWW-Authenticate: Bearer``, no error code."""
    for headers in ({}, {"Authorization": "Basic YTpi"}):
        r = ids.client.get("/t/acme/userinfo", headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert "error" not in r.json() and r.json()["message"]
    junk = ids.client.get("/t/acme/userinfo", headers={"Authorization": "Bearer junk"})
    assert (junk.status_code, junk.json()["error"]) == (401, "invalid_token")
    assert 'error="invalid_token"' in junk.headers["www-authenticate"]
