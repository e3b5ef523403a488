"""OpenID Connect / OAuth 2 provider, per tenant, at issuer ``{http.public_url}/t/{tenant}``.

What a standby site does: it serves discovery, JWKS, introspection, userinfo and the
client_credentials grant (access tokens are signed JWTs and need no store write; the
keys arrive by replication). Grants that must remember something — authorization
codes, refresh tokens, revocations, private_key_jwt assertion ids — need the primary and
answer 503 ``temporarily_unavailable`` with Retry-After on a standby.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import TYPE_CHECKING

from standby.identity import keys

if TYPE_CHECKING:
    from fastapi import FastAPI

    from standby.server import Site

log = logging.getLogger("standby.oidc")


def selftest(site: Site) -> str | None:
    """Deep health: None if this site can sign a token with its active key and verify it
    with its published JWK Set; else why not. Writes nothing (safe on a standby)."""
    from standby.identity.oidc.verify import InvalidToken, Verifier

    row = keys.active_row(site)
    if row is None:
        if site.role == "primary":
            return "no active signing key yet (the key schedule creates one at start-up)"
        return "no active signing key has been replicated to this standby yet"
    try:
        key = keys.keyring(site).private(row)
    except Exception as exc:  # noqa: BLE001 - any failure here is the reason to report
        return f"cannot open the active signing key {row['id']}: {exc} (is the KEK right?)"
    from joserfc import jwt

    probe = secrets.token_urlsafe(8)
    token = jwt.encode(
        {"alg": row["alg"], "kid": row["id"]},
        {"iss": "standby-selftest", "sub": probe, "exp": 2**31 - 1},
        key,
        algorithms=[row["alg"]],
    )
    try:
        claims = Verifier(keys.public_jwks(site)).verify(token, issuer="standby-selftest")
    except InvalidToken as exc:
        return f"a token signed with key {row['id']} does not verify with the JWK Set: {exc}"
    return None if claims.get("sub") == probe else "self-test token came back altered"


def mount(app: FastAPI, site: Site) -> None:
    """Add the OIDC routes, the signing-key schedule and the token readiness check."""
    from standby.identity.oidc import authorize, cleanup, endpoints, issuer, logout

    endpoints.register_metrics(site)
    app.include_router(endpoints.router())
    app.include_router(authorize.router())
    app.include_router(logout.router())
    site.background.append(keys.key_schedule)
    site.background.append(cleanup.cleanup_schedule)
    site.readiness["tokens"] = lambda: selftest(site)
    unset = issuer.no_public_url(site)
    if unset:
        site.warnings["public_url"] = unset
        log.warning(json.dumps({"event": "public_url_unset", "site": site.name, "why": unset}))
