"""A relying party configured once, against the public URL, keeps working across a
kill -9 failover (issue 10).

Two real sites and the controller behind the builtin router; the client is not ours
(Authlib's OAuth2Client for code + PKCE, refresh, userinfo and introspection; PyJWT for
ID-token and access-token validation from discovery and JWKS). It learns the endpoints
once, from discovery through the router, and never changes them. After the primary is
killed and the standby promoted: discovery is the same document, tokens issued before
the failover verify against the JWKS fetched after it and introspect as active, the
refresh token works, and a new login works — all through the one configuration. (With
each site's issuer its own host:port, discovery named site-a's address and the first
assertion below failed.)"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client

from tests.support.cluster import Cluster
from tests.support.edge import edge_cluster
from tests.support.oidc import query_of

pytestmark = pytest.mark.slow

REDIRECT = "http://127.0.0.1:9/callback"
PASSWORD = "correct horse battery staple"


def _seed(cluster: Cluster, url: str) -> dict[str, Any]:
    """Tenant acme, user alice and a confidential code-flow client, through the router."""
    admin = cluster.admin()
    for path, body in (
        ("/admin/tenants", {"id": "acme", "name": "Acme"}),
        ("/admin/tenants/acme/users", {"username": "alice", "password": PASSWORD}),
    ):
        r = httpx.post(f"{url}{path}", json=body, headers=admin, timeout=10)
        assert r.status_code == 201, r.text
    r = httpx.post(
        f"{url}/admin/tenants/acme/clients",
        json={
            "name": "rp",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "scopes": ["openid", "profile", "offline_access"],
            "first_party": True,
        },
        headers=admin,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _discovery(issuer: str) -> tuple[dict[str, Any], str]:
    """The discovery document, and which site answered it."""
    r = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json()), r.headers["standby-site"]


def _sign_in(rp: OAuth2Client, meta: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Code + PKCE: the user agent signs in (JSON login sets the session cookie) and
    follows the authorization URL; the client redeems the code. (tokens, nonce)"""
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(12)
    auth_url, state = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    with httpx.Client(timeout=10) as user_agent:
        login = user_agent.post(
            f"{meta['issuer']}/login", json={"username": "alice", "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        answer = user_agent.get(auth_url)
    assert answer.status_code in (302, 303), answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT) and query_of(location)["iss"] == meta["issuer"]
    token = rp.fetch_token(
        meta["token_endpoint"], authorization_response=location, code_verifier=verifier, state=state
    )
    return dict(token), nonce


def _verify(jwks: pyjwt.PyJWKClient, token: str, audience: str, issuer: str) -> dict[str, Any]:
    key = jwks.get_signing_key_from_jwt(token)
    return dict(
        pyjwt.decode(
            token, key.key, algorithms=[key.algorithm_name], audience=audience, issuer=issuer
        )
    )


def _wait_replicated(cluster: Cluster, timeout: float = 20.0) -> None:
    """Until site-b has applied everything site-a has (the tokens and session included)."""

    def caught_up() -> bool:
        a, b = cluster.site_status("site-a"), cluster.site_status("site-b")
        return bool(a and b and b["applied_lsn"] >= a["head_lsn"])

    cluster.wait_for("site-b to catch up with site-a", caught_up, timeout)


def _wait_served_by(url: str, site: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{url}/readyz", timeout=2)
            if r.status_code == 200 and r.headers.get("standby-site") == site:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the router at {url} never reached {site}")


def test_a_relying_party_configured_once_survives_a_kill9_failover(tmp_path: Path) -> None:
    with edge_cluster(tmp_path, "builtin") as (cluster, url):
        issuer = f"{url}/t/acme"  # the relying party's one setting: the public URL
        app = _seed(cluster, url)
        meta, served_by = _discovery(issuer)
        assert meta["issuer"] == issuer and served_by == "site-a"
        rp = OAuth2Client(
            app["client_id"],
            app["client_secret"],
            scope="openid profile offline_access",
            redirect_uri=REDIRECT,
            code_challenge_method="S256",
            timeout=10,
        )
        before, nonce = _sign_in(rp, meta)
        jwks_before = pyjwt.PyJWKClient(meta["jwks_uri"])
        id_claims = _verify(jwks_before, before["id_token"], app["client_id"], issuer)
        assert id_claims["nonce"] == nonce
        _verify(jwks_before, before["access_token"], issuer, issuer)
        assert "refresh_token" in before
        _wait_replicated(cluster)

        cluster.sites["site-a"].kill()
        cluster.wait_for(
            "the controller to promote site-b",
            lambda: (s := cluster.status())["primary"] == "site-b" and s["epoch"] == 2,
            timeout=30,
        )
        _wait_served_by(url, "site-b")
        cluster.wait_writable("site-b")

        # the same issuer and endpoints, now from the promoted site
        after_meta, served_by = _discovery(issuer)
        assert served_by == "site-b"
        assert after_meta == meta
        jwks_after = pyjwt.PyJWKClient(after_meta["jwks_uri"])

        # tokens issued before the failover verify against the JWKS fetched after it
        assert _verify(jwks_after, before["id_token"], app["client_id"], issuer) == id_claims
        _verify(jwks_after, before["access_token"], issuer, issuer)
        seen = rp.introspect_token(meta["introspection_endpoint"], token=before["access_token"])
        assert seen.status_code == 200 and seen.headers["standby-site"] == "site-b"
        assert seen.json()["active"] is True, seen.json()
        assert seen.json()["iss"] == issuer
        info = httpx.get(
            meta["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {before['access_token']}"},
            timeout=10,
        )
        assert info.status_code == 200 and info.json()["sub"] == id_claims["sub"]

        # the refresh token issued by site-a works on site-b; the new tokens verify
        refreshed = rp.refresh_token(meta["token_endpoint"], refresh_token=before["refresh_token"])
        assert refreshed["refresh_token"] != before["refresh_token"]
        new_claims = _verify(jwks_after, refreshed["id_token"], app["client_id"], issuer)
        assert new_claims["sub"] == id_claims["sub"]
        _verify(jwks_after, refreshed["access_token"], issuer, issuer)
        info = rp.get(meta["userinfo_endpoint"])  # with the refreshed access token
        assert info.status_code == 200 and info.headers["standby-site"] == "site-b"
        assert info.json()["sub"] == id_claims["sub"]

        # and a new sign-in, through the same client configuration
        fresh, nonce = _sign_in(rp, meta)
        claims = _verify(jwks_after, fresh["id_token"], app["client_id"], issuer)
        assert claims["nonce"] == nonce and claims["sub"] == id_claims["sub"]
