"""OIDC test helpers: clients made through the admin API, form posts, PKCE pairs,
client assertions signed with a client's own key (joserfc on the client side)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt as pyjwt
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.support.identity import PASSWORD, IdSite, identity_site

REDIRECT = "https://app.example/cb"


def make_client(ids: IdSite, tenant: str = "acme", **body: Any) -> dict[str, Any]:
    payload = {"name": "app", "redirect_uris": [REDIRECT], **body}
    r = ids.client.post(f"/admin/tenants/{tenant}/clients", json=payload, headers=ids.admin)
    assert r.status_code == 201, r.text
    return dict(r.json())


def machine_client(ids: IdSite, tenant: str = "acme", **body: Any) -> dict[str, Any]:
    return make_client(
        ids,
        tenant,
        grant_types=["client_credentials"],
        scopes=["api.read", "api.write"],
        redirect_uris=[],
        **body,
    )


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def rsa_client_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "client-key-1"})


def assertion(
    key: RSAKey,
    client_id: str,
    audience: str,
    *,
    exp_in: int = 60,
    jti: str | None = None,
    now: float | None = None,
) -> str:
    at = int(now if now is not None else time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": at,
        "exp": at + exp_in,
        "jti": jti or secrets.token_urlsafe(12),
    }
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


class FormParser(HTMLParser):
    """The first <form> of a page as a browser sees it: action, method, named inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.method = "get"
        self.fields: dict[str, str] = {}
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action, self.method, self._in_form = (
                a.get("action", ""),
                a.get("method", "get"),
                True,
            )
        elif tag == "input" and self._in_form and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def parse_form(html: str) -> FormParser:
    p = FormParser()
    p.feed(html)
    assert p.action is not None, "no form on the page"
    return p


def query_of(location: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(location).query))


def issuer(ids: IdSite) -> str:
    return f"{ids.site.settings.base_url()}/t/acme"


def pyjwt_claims(
    ids: IdSite,
    token: str,
    audience: str,
    issuer: str,
    algorithms: list[str] | None = None,
    check_iat: bool = True,
) -> dict[str, Any]:
    """Verify a token with PyJWT from the tenant's JWKS alone (an independent library);
    expiry is not checked (tests move the site's clock)."""
    jwks = ids.client.get("/t/acme/jwks").json()
    kid = pyjwt.get_unverified_header(token)["kid"]
    key = next(pyjwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == kid)
    return dict(
        pyjwt.decode(
            token,
            key.key,
            algorithms=algorithms or [key.algorithm_name],
            audience=audience,
            issuer=issuer,
            options={"verify_exp": False, "verify_iat": check_iat},
        )
    )


# ---------------------------------------------------------------- code flow, in-process


@contextmanager
def oidc_site(tmp_path: Path, store_url: str, *users: str) -> Iterator[IdSite]:
    """An in-process site with tenant ``acme``, these users, a signing key, and a client
    that does not follow redirects (so tests see where the browser would be sent)."""
    from standby.identity import keys

    with identity_site(tmp_path, store_url) as s:
        s.tenant("acme")
        for name in users:
            s.user(name)
        keys.ensure_active_key(s.site)
        s.client.follow_redirects = False
        yield s


def code_request(client_id: str, **params: str) -> dict[str, str]:
    """Query parameters of an authorization request with PKCE (S256) for REDIRECT;
    ``params`` override or add (e.g. scope, state, prompt)."""
    _, challenge = pkce()
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid",
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **params,
    }


def authorize(ids: IdSite, client_id: str, **params: str) -> Any:
    """GET the authorization endpoint (params override the defaults; "" drops one)."""
    q = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "state": "st-1",
        "nonce": "n-1",
        **params,
    }
    q = {k: v for k, v in q.items() if v != ""}
    return ids.client.get("/t/acme/authorize?" + urlencode(q))


def submit(ids: IdSite, page: Any, **values: str) -> Any:
    """Post a page's first form as a browser would, with ``values`` filled in."""
    form = parse_form(page.text)
    return ids.client.post(form.action or "", data={**form.fields, **values})


def login_for_code(
    ids: IdSite, client_id: str, user: str = "alice", **params: str
) -> dict[str, str]:
    """Sign in on the hosted page; the redirect's query (code, state, iss)."""
    page = authorize(ids, client_id, **params)
    assert page.status_code == 200, page.text
    done = submit(ids, page, username=user, password=PASSWORD)
    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith(REDIRECT + "?")
    return query_of(done.headers["location"])


def exchange(ids: IdSite, client: dict[str, Any], code: str, **extra: str) -> Any:
    """Redeem a code at the token endpoint, authenticated as ``client``."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **extra}
    if client.get("client_secret"):
        return ids.client.post(
            "/t/acme/token", data=form, headers=basic(client["client_id"], client["client_secret"])
        )
    return ids.client.post("/t/acme/token", data={**form, "client_id": client["client_id"]})


def refresh(ids: IdSite, client: dict[str, Any], token: str) -> Any:
    """A refresh_token grant for a confidential client (HTTP Basic)."""
    return ids.client.post(
        "/t/acme/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        headers=basic(client["client_id"], client["client_secret"]),
    )


def introspect(ids: IdSite, client: dict[str, Any], token: str) -> dict[str, Any]:
    """What the introspection endpoint tells ``client`` about ``token``."""
    r = ids.client.post(
        "/t/acme/introspect",
        data={"token": token},
        headers=basic(client["client_id"], client["client_secret"]),
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def userinfo_status(ids: IdSite, access_token: str) -> int:
    r = ids.client.get("/t/acme/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    return r.status_code
