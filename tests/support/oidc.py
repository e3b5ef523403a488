"""OIDC test helpers: clients made through the admin API, form posts, PKCE pairs,
client assertions signed with a client's own key (joserfc on the client side)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.support.identity import IdSite

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
