"""Revocation holds on every site: tokens revoked on the primary (a password change)
introspect ``active: false`` on its standby, which has only the replicated rows to go on.
Real `standby serve` processes (primary + following standby) and their controller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cluster import Cluster, make_cluster
from tests.support.identity import PASSWORD
from tests.support.oidc import REDIRECT, basic, pkce, query_of

pytestmark = pytest.mark.slow


def _post(url: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    r = httpx.post(url + path, json=body, headers=headers, timeout=10)
    assert r.status_code in (200, 201), r.text
    return r.json()


def _tokens(url: str, client: dict[str, Any]) -> dict[str, Any]:
    """alice signs in on the primary and her first-party app redeems the code."""
    verifier, challenge = pkce()
    with httpx.Client(base_url=url, timeout=10) as browser:
        login = browser.post("/t/acme/login", json={"username": "alice", "password": PASSWORD})
        assert login.status_code == 200, login.text
        r = browser.get(
            "/t/acme/authorize",
            params={
                "response_type": "code",
                "client_id": client["client_id"],
                "redirect_uri": REDIRECT,
                "scope": "openid",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        assert r.status_code == 303, r.text
        code = query_of(r.headers["location"])["code"]
    r = httpx.post(
        f"{url}/t/acme/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        headers=basic(client["client_id"], client["client_secret"]),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _active(url: str, client: dict[str, Any], token: str) -> bool:
    r = httpx.post(
        f"{url}/t/acme/introspect",
        data={"token": token},
        headers=basic(client["client_id"], client["client_secret"]),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return bool(r.json()["active"])


def _caught_up(c: Cluster) -> None:
    """Wait until the standby has applied everything the primary has written so far."""
    head = (c.site_status("site-a") or {})["head_lsn"]
    c.wait_for(
        f"site-b to apply up to {head}",
        lambda: ((c.site_status("site-b") or {}).get("applied_lsn") or 0) >= head,
    )


def test_tokens_revoked_on_the_primary_are_inactive_on_the_standby(tmp_path: Path) -> None:
    c = make_cluster(tmp_path)
    try:
        c.start()
        c.wait_writable("site-a")
        primary, standby, admin = c.urls["site-a"], c.urls["site-b"], c.admin()
        _post(primary, "/admin/tenants", {"id": "acme", "name": "Acme"}, admin)
        user = _post(
            primary, "/admin/tenants/acme/users", {"username": "alice", "password": PASSWORD}, admin
        )
        app = _post(
            primary,
            "/admin/tenants/acme/clients",
            {"name": "app", "redirect_uris": [REDIRECT], "first_party": True},
            admin,
        )
        tokens = _tokens(primary, app)
        _caught_up(c)
        # the standby knows the tokens (same issuer, replicated keys and rows) ...
        for token in (tokens["access_token"], tokens["refresh_token"]):
            assert _active(standby, app, token) is True
        # ... and once the password change on the primary has replicated, it knows them revoked
        _post(
            primary,
            f"/admin/tenants/acme/users/{user['id']}/password",
            {"password": "another correct horse battery"},
            admin,
        )
        _caught_up(c)
        for token in (tokens["access_token"], tokens["refresh_token"]):
            assert _active(standby, app, token) is False
            assert _active(primary, app, token) is False
        info = httpx.get(
            f"{standby}/t/acme/userinfo",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
            timeout=10,
        )
        assert info.status_code == 401, info.text
    finally:
        c.stop()
