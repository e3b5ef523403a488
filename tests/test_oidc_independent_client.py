"""The independent-client test: a real `standby serve` process, an OAuth client that is
not ours (Authlib's httpx OAuth2Client) driving code + PKCE through the HTML login page
as a browser would, and the ID token verified by another JOSE library (PyJWT) from the
JWKS alone. The same client then uses every other advertised grant and auth method."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import jwt as pyjwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT

from tests.support.oidc import parse_form, query_of, rsa_client_key
from tests.support.sites import SiteProcess, load_site, make_site_dir

REDIRECT = "http://127.0.0.1:9/callback"
PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path, store_url: str) -> Iterator[tuple[SiteProcess, dict[str, str]]]:
    config = make_site_dir(tmp_path, "site-a", store_url=store_url)
    _, secrets_ = load_site(config)
    proc = SiteProcess(config).start()
    try:
        yield proc, {"Authorization": f"Bearer {secrets_.admin_token.get_secret_value()}"}
    finally:
        proc.stop()


def admin(url: str, headers: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(url + path, json=body, headers=headers, timeout=10)
    assert r.status_code == 201, r.text
    return dict(r.json())


def token_problems(url: str) -> dict[str, str]:
    """The problems /readyz reports (other parts' checks included, filtered by callers)."""
    return dict(httpx.get(f"{url}/readyz", timeout=10).json()["problems"])


def browser_login(auth_url: str) -> str:
    """Follow the authorization URL like a browser: fetch the page, fill in the first
    form found in the HTML (keeping its hidden fields, CSRF included), submit it, and
    return where the site redirects to."""
    with httpx.Client(timeout=10) as browser:
        page = browser.get(auth_url)
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        form = parse_form(page.text)
        assert form.method.lower() == "post" and "csrf" in form.fields
        done = browser.post(
            urljoin(str(page.url), form.action or ""),
            data={**form.fields, "username": "alice", "password": PASSWORD},
        )
        assert done.status_code == 303, done.text
        return done.headers["location"]


def test_an_independent_client_against_a_real_server(
    server: tuple[SiteProcess, dict[str, str]],
) -> None:
    proc, hdr = server
    # the key schedule makes the first signing key at start-up; readiness says so
    deadline = time.monotonic() + 20
    while "tokens" in token_problems(proc.url):
        assert time.monotonic() < deadline, token_problems(proc.url)
        time.sleep(0.1)
    admin(proc.url, hdr, "/admin/tenants", {"id": "acme", "name": "Acme"})
    assert len(httpx.get(f"{proc.url}/t/acme/jwks", timeout=5).json()["keys"]) == 1
    code_flow_with_pkce_verified_by_pyjwt(proc, hdr)
    machine_clients_with_each_auth_method(proc, hdr)


def code_flow_with_pkce_verified_by_pyjwt(proc: SiteProcess, hdr: dict[str, str]) -> None:
    url = proc.url
    admin(url, hdr, "/admin/tenants/acme/users", {"username": "alice", "password": PASSWORD})
    app = admin(
        url,
        hdr,
        "/admin/tenants/acme/clients",
        {
            "name": "web",
            "redirect_uris": [REDIRECT],
            "scopes": ["openid", "profile", "email"],
            "first_party": True,
        },
    )
    meta = httpx.get(f"{url}/t/acme/.well-known/openid-configuration", timeout=10).json()
    assert meta["issuer"] == f"{url}/t/acme"

    client = OAuth2Client(
        app["client_id"],
        app["client_secret"],
        scope="openid profile",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        timeout=10,
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(12)
    auth_url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    location = browser_login(auth_url)
    assert location.startswith(REDIRECT)
    assert query_of(location)["iss"] == meta["issuer"]
    token = client.fetch_token(
        meta["token_endpoint"],
        authorization_response=location,
        code_verifier=verifier,
        state=state,
    )
    assert token["token_type"].lower() == "bearer"

    jwks_client = pyjwt.PyJWKClient(meta["jwks_uri"])
    signing_key = jwks_client.get_signing_key_from_jwt(token["id_token"])
    claims = pyjwt.decode(
        token["id_token"],
        signing_key.key,
        algorithms=meta["id_token_signing_alg_values_supported"],
        audience=app["client_id"],
        issuer=meta["issuer"],
    )
    assert claims["nonce"] == nonce and claims["amr"] == ["pwd"]
    assert claims["preferred_username"] == "alice" and claims["auth_time"] <= claims["iat"]
    at = pyjwt.decode(
        token["access_token"],
        jwks_client.get_signing_key_from_jwt(token["access_token"]).key,
        algorithms=["RS256"],
        audience=meta["issuer"],
        issuer=meta["issuer"],
    )
    assert pyjwt.get_unverified_header(token["access_token"])["typ"] == "at+jwt"
    assert at["sub"] == claims["sub"] and at["client_id"] == app["client_id"]

    info = client.get(meta["userinfo_endpoint"])
    assert info.status_code == 200 and info.json()["sub"] == claims["sub"]

    # refresh with rotation, then revoke and introspect, all through Authlib
    old_refresh = token["refresh_token"]
    new = client.refresh_token(meta["token_endpoint"], refresh_token=old_refresh)
    assert new["refresh_token"] != old_refresh and "id_token" in new
    live = client.introspect_token(meta["introspection_endpoint"], token=new["refresh_token"])
    assert live.json()["active"] is True
    assert (
        client.revoke_token(meta["revocation_endpoint"], token=new["refresh_token"]).status_code
        == 200
    )
    dead = client.introspect_token(meta["introspection_endpoint"], token=new["refresh_token"])
    assert dead.json() == {"active": False}

    assert "tokens" not in token_problems(url)


def machine_clients_with_each_auth_method(proc: SiteProcess, hdr: dict[str, str]) -> None:
    url = proc.url
    meta = httpx.get(f"{url}/t/acme/.well-known/openid-configuration", timeout=10).json()
    key = rsa_client_key()
    tokens = []
    for method in ("client_secret_basic", "client_secret_post", "private_key_jwt"):
        body: dict[str, Any] = {
            "name": method,
            "grant_types": ["client_credentials"],
            "scopes": ["api.read"],
            "token_endpoint_auth_method": method,
        }
        if method == "private_key_jwt":
            body["jwks"] = {"keys": [key.as_dict(private=False)]}
        app = admin(url, hdr, "/admin/tenants/acme/clients", body)
        client = OAuth2Client(
            app["client_id"],
            app.get("client_secret") or key,
            token_endpoint_auth_method=method,
            revocation_endpoint_auth_method=method,
            scope="api.read",
            timeout=10,
        )
        if method == "private_key_jwt":
            client.register_client_auth_method(PrivateKeyJWT(meta["token_endpoint"]))
        token = client.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
        assert token["scope"] == "api.read", method
        tokens.append((client, token["access_token"]))
    jwks_client = pyjwt.PyJWKClient(meta["jwks_uri"])
    for client, access in tokens:
        claims = pyjwt.decode(
            access,
            jwks_client.get_signing_key_from_jwt(access).key,
            algorithms=["RS256"],
            audience=meta["issuer"],
            issuer=meta["issuer"],
        )
        assert claims["client_id"] == client.client_id
        info = client.introspect_token(meta["introspection_endpoint"], token=access)
        assert info.json()["active"] is True
        revoked = client.revoke_token(meta["revocation_endpoint"], token=access)
        assert revoked.status_code == 200, (client.token_endpoint_auth_method, revoked.text)
        info = client.introspect_token(meta["introspection_endpoint"], token=access)
        assert info.json() == {"active": False}
