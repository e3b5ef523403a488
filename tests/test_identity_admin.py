"""The admin API: CRUD with an audit event per action, and bad input that writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.identity import PASSWORD, IdSite, identity_site


@pytest.fixture
def ids(tmp_path: Path, store_url: str) -> Iterator[IdSite]:
    with identity_site(tmp_path, store_url) as s:
        s.tenant()
        yield s


def _audit(ids: IdSite, tenant: str = "acme") -> list[dict[str, Any]]:
    r = ids.client.get(f"/admin/tenants/{tenant}/audit?limit=1000", headers=ids.admin)
    assert r.status_code == 200
    return list(r.json()["events"])


def _call(ids: IdSite, method: str, path: str, body: Any = None) -> Any:
    r = ids.client.request(method, path, json=body, headers=ids.admin)
    assert r.status_code < 300, r.text
    return r.json()


def test_every_admin_action_writes_one_audit_event(ids: IdSite) -> None:
    """Each admin change commits together with exactly one audit event naming it."""
    steps: list[tuple[str, str, Any, str]] = []
    base = "/admin/tenants/acme"

    def step(method: str, path: str, body: Any, action: str) -> Any:
        before = len(_audit(ids))
        out = _call(ids, method, path, body)
        events = _audit(ids)
        assert len(events) == before + 1, (action, events[before:])
        assert events[-1]["action"] == action and events[-1]["actor"] == "admin"
        steps.append((method, path, body, action))
        return out

    uid = step("POST", f"{base}/users", {"username": "bob", "password": PASSWORD}, "user.create")[
        "id"
    ]
    step("PATCH", f"{base}/users/{uid}", {"display_name": "Bob"}, "user.update")
    step(
        "POST",
        f"{base}/users/{uid}/password",
        {"password": "another fine passphrase"},
        "user.set_password",
    )
    step("POST", f"{base}/users/{uid}/reset-token", None, "user.reset_token")
    step("POST", f"{base}/users/{uid}/sessions/revoke", None, "session.revoke_all")
    step("DELETE", f"{base}/users/{uid}/mfa", None, "mfa.reset")
    gid = step("POST", f"{base}/groups", {"name": "ops", "roles": ["admin"]}, "group.create")["id"]
    step("PATCH", f"{base}/groups/{gid}", {"roles": ["admin", "auditor"]}, "group.update")
    step("POST", f"{base}/groups/{gid}/members", {"user_id": uid}, "group.add_member")
    assert _call(ids, "GET", f"{base}/groups/{gid}/members")["members"] == [uid]
    step("DELETE", f"{base}/groups/{gid}/members/{uid}", None, "group.remove_member")
    step("DELETE", f"{base}/groups/{gid}", None, "group.delete")
    cid = step(
        "POST",
        f"{base}/clients",
        {"name": "app", "redirect_uris": ["https://app.example/cb"]},
        "client.create",
    )["client_id"]
    step("PATCH", f"{base}/clients/{cid}", {"scopes": ["openid"]}, "client.update")
    step("DELETE", f"{base}/clients/{cid}", None, "client.delete")
    step("DELETE", f"{base}/users/{uid}", None, "user.delete")
    step("PATCH", base, {"name": "Acme Inc"}, "tenant.update")
    step("DELETE", base, None, "tenant.delete")
    assert _call(ids, "GET", "/admin/tenants")["tenants"] == []
    # tenant.create happened in the fixture; it is the first event of the tenant
    assert _audit(ids)[0]["action"] == "tenant.create"


def test_users_crud_and_listing(ids: IdSite) -> None:
    for name in ("carol", "alice", "bob"):
        ids.user(name)
    page = _call(ids, "GET", "/admin/tenants/acme/users?limit=2")
    assert [u["username"] for u in page["users"]] == ["alice", "bob"]
    rest = _call(ids, "GET", f"/admin/tenants/acme/users?limit=2&after={page['next']}")
    assert [u["username"] for u in rest["users"]] == ["carol"] and rest["next"] is None
    assert all("password_hash" not in u and "totp_secret" not in u for u in page["users"])
    uid = page["users"][0]["id"]
    got = _call(ids, "GET", f"/admin/tenants/acme/users/{uid}")
    assert got["username"] == "alice" and "password_hash" not in got
    r = ids.client.get("/admin/tenants/acme/users/nope", headers=ids.admin)
    assert r.status_code == 404 and r.json()["error"] == "unknown_user"


def test_groups_give_roles(ids: IdSite) -> None:
    from standby.identity.groups import user_roles

    uid = ids.user()
    g1 = _call(ids, "POST", "/admin/tenants/acme/groups", {"name": "ops", "roles": ["deploy"]})
    g2 = _call(ids, "POST", "/admin/tenants/acme/groups", {"name": "sec", "roles": ["audit"]})
    for g in (g1, g2):
        _call(ids, "POST", f"/admin/tenants/acme/groups/{g['id']}/members", {"user_id": uid})
    assert user_roles(ids.site, "acme", uid) == ["audit", "deploy"]
    r = ids.client.post("/admin/tenants/acme/groups", json={"name": "ops"}, headers=ids.admin)
    assert r.status_code == 409 and r.json()["error"] == "duplicate_group"


def test_clients_secret_once_hashed_and_redirects_checked(ids: IdSite) -> None:
    from standby.identity.clients import verify_client_secret

    made = _call(
        ids,
        "POST",
        "/admin/tenants/acme/clients",
        {"name": "web", "redirect_uris": ["https://app.example/cb", "http://127.0.0.1:8000/cb"]},
    )
    secret = made["client_secret"]
    assert verify_client_secret(ids.site, "acme", made["client_id"], secret)
    assert not verify_client_secret(ids.site, "acme", made["client_id"], secret + "x")
    listed = _call(ids, "GET", "/admin/tenants/acme/clients")["clients"]
    assert listed[0]["client_id"] == made["client_id"]
    assert "client_secret" not in listed[0] and "secret_hash" not in listed[0]
    assert secret not in "".join(ids.payloads())
    public = _call(
        ids,
        "POST",
        "/admin/tenants/acme/clients",
        {
            "name": "spa",
            "redirect_uris": ["http://localhost:3000/cb"],
            "token_endpoint_auth_method": "none",
        },
    )
    assert "client_secret" not in public
    head = ids.head()
    for uris, method in [
        (["http://app.example/cb"], "client_secret_basic"),  # plain http off loopback
        (["/relative/cb"], "client_secret_basic"),
        (["https://app.example/cb#frag"], "client_secret_basic"),
        (["https://app.example/cb"], "magic"),
    ]:
        r = ids.client.post(
            "/admin/tenants/acme/clients",
            json={"name": "bad", "redirect_uris": uris, "token_endpoint_auth_method": method},
            headers=ids.admin,
        )
        assert r.status_code == 400, r.text
        assert r.json()["error"] in ("invalid_redirect_uri", "invalid_client_metadata")
    assert ids.head() == head


def test_audit_paging_by_cursor(ids: IdSite) -> None:
    for i in range(7):
        ids.user(f"user{i}")
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        q = "/admin/tenants/acme/audit?limit=3" + (f"&after={cursor}" if cursor else "")
        page = _call(ids, "GET", q)
        seen += [e["id"] for e in page["events"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 8  # tenant.create + 7 user.create, each once
    assert seen == sorted(seen)
    everything = _call(ids, "GET", "/admin/audit?limit=1000")["events"]
    assert [e["id"] for e in everything] == seen


BAD_INPUT = [
    # (name, method, path, raw body or json, headers override, status, error)
    (
        "malformed json",
        "POST",
        "/admin/tenants/acme/users",
        b'{"username": "x",',
        None,
        400,
        "invalid_request",
    ),
    (
        "unknown field",
        "POST",
        "/admin/tenants/acme/users",
        {"username": "x", "password": PASSWORD, "is_admin": True},
        None,
        400,
        "invalid_request",
    ),
    (
        "over-long username",
        "POST",
        "/admin/tenants/acme/users",
        {"username": "x" * 201, "password": PASSWORD},
        None,
        400,
        "invalid_request",
    ),
    (
        "over-long password",
        "POST",
        "/admin/tenants/acme/users",
        {"username": "x", "password": "p" * 5000},
        None,
        400,
        "invalid_request",
    ),
    (
        "wrong type",
        "POST",
        "/admin/tenants/acme/users",
        {"username": ["x"], "password": PASSWORD},
        None,
        400,
        "invalid_request",
    ),
    (
        "unknown tenant",
        "POST",
        "/admin/tenants/nope/users",
        {"username": "x", "password": PASSWORD},
        None,
        404,
        "unknown_tenant",
    ),
    (
        "duplicate username",
        "POST",
        "/admin/tenants/acme/users",
        {"username": "alice", "password": PASSWORD},
        None,
        409,
        "duplicate_username",
    ),
    (
        "duplicate tenant",
        "POST",
        "/admin/tenants",
        {"id": "acme", "name": "again"},
        None,
        409,
        "duplicate_tenant",
    ),
    (
        "bad tenant id",
        "POST",
        "/admin/tenants",
        {"id": "Not Valid!", "name": "x"},
        None,
        400,
        "invalid_request",
    ),
    (
        "wrong admin token",
        "POST",
        "/admin/tenants/acme/users",
        {"username": "x", "password": PASSWORD},
        {"Authorization": "Bearer wrong"},
        401,
        "unauthorized",
    ),
    (
        "wrong token, unknown tenant",
        "GET",
        "/admin/tenants/nope/users",
        None,
        {"Authorization": "Bearer wrong"},
        401,
        "unauthorized",
    ),
    (
        "no admin token",
        "POST",
        "/admin/tenants",
        {"id": "t2", "name": "x"},
        {},
        401,
        "unauthorized",
    ),
    (
        "basic instead of bearer",
        "GET",
        "/admin/tenants",
        None,
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        401,
        "unauthorized",
    ),
    (
        "non-empty tenant delete",
        "DELETE",
        "/admin/tenants/acme",
        None,
        None,
        409,
        "tenant_not_empty",
    ),
    (
        "login unknown field",
        "POST",
        "/t/acme/login",
        {"username": "alice", "password": PASSWORD, "remember": True},
        {},
        400,
        "invalid_request",
    ),
    ("login malformed json", "POST", "/t/acme/login", b"not json", {}, 400, "invalid_request"),
    (
        "login over-long",
        "POST",
        "/t/acme/login",
        {"username": "a" * 500, "password": PASSWORD},
        {},
        400,
        "invalid_request",
    ),
    (
        "login unknown tenant",
        "POST",
        "/t/nope/login",
        {"username": "alice", "password": PASSWORD},
        {},
        404,
        "unknown_tenant",
    ),
    (
        "body too large",
        "POST",
        "/admin/tenants/acme/users",
        {"username": "x", "password": PASSWORD, "display_name": "d" * 70000},
        None,
        413,
        "payload_too_large",
    ),
]


def test_bad_input_is_a_4xx_and_writes_nothing(ids: IdSite) -> None:
    """Each case on one site (cheaper than a site per case); the case name is in every assert."""
    ids.user()
    for name, method, path, body, headers, status, error in BAD_INPUT:
        head = ids.head()
        kwargs: dict[str, Any] = {"headers": ids.admin if headers is None else headers}
        if isinstance(body, bytes):
            kwargs["content"] = body
            kwargs["headers"] = {**kwargs["headers"], "content-type": "application/json"}
        elif body is not None:
            kwargs["json"] = body
        r = ids.client.request(method, path, **kwargs)
        assert r.status_code == status, (name, r.text)
        assert r.json()["error"] == error and r.json()["message"], (name, r.text)
        assert ids.head() == head, f"{name}: the change log moved"


def test_patch_with_nothing_to_change_is_a_no_op(ids: IdSite) -> None:
    """Every PATCH route, with `{}` and with every field null: the object as it is (or a
    400 where a field is required), never a 500, and the change log does not move."""
    uid = ids.user()
    gid = _call(ids, "POST", "/admin/tenants/acme/groups", {"name": "ops", "roles": ["x"]})["id"]
    cid = _call(
        ids,
        "POST",
        "/admin/tenants/acme/clients",
        {"name": "web", "redirect_uris": ["https://app.example/cb"]},
    )["client_id"]
    routes = [
        (f"/admin/tenants/acme/users/{uid}", ["email", "display_name", "disabled", "unlock"]),
        (f"/admin/tenants/acme/groups/{gid}", ["name", "roles"]),
        (
            f"/admin/tenants/acme/clients/{cid}",
            ["name", "redirect_uris", "post_logout_redirect_uris", "grant_types", "scopes"],
        ),
        ("/admin/tenants/acme", ["name"]),
    ]
    for path, fields in routes:
        if "/groups/" in path:  # groups have no GET of one group
            listed = _call(ids, "GET", "/admin/tenants/acme/groups")["groups"]
            before = next(g for g in listed if g["id"] == gid)
        else:
            before = _call(ids, "GET", path)
        for body in ({}, dict.fromkeys(fields)):
            head = ids.head()
            r = ids.client.patch(path, json=body, headers=ids.admin)
            if path == "/admin/tenants/acme":  # a tenant's name is required
                assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
            else:
                assert r.status_code == 200, (path, body, r.text)
                assert r.json() == before, (path, body)
            assert ids.head() == head, (path, body, "the change log moved")
