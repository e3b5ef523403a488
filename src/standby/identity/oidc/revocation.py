"""Token revocation (RFC 7009) and introspection (RFC 7662).

Revocation writes (a refresh-token family revoked, or an access token's jti recorded);
introspection only reads, so resource servers can use a standby site.

Introspection tells a client about a token only if the token was issued to that client
or the client is one of the token's client's ``resource_servers``; anyone else gets
``{"active": false}``, as for an unknown token (RFC 7662 2.2, 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from standby.identity.clients import get_client_row
from standby.identity.clock import US, now
from standby.identity.oidc import errors, families
from standby.identity.oidc.client_auth import AuthenticatedClient
from standby.identity.oidc.issuer import issuer
from standby.identity.oidc.tokens import verify_access_token, verify_ours
from standby.identity.oidc.verify import InvalidToken
from standby.identity.tokens import json_list, token_hash
from standby.store.schema import refresh_tokens

if TYPE_CHECKING:
    from standby.server import Site

HINTS = ("access_token", "refresh_token")


def _refresh_row(site: Site, tenant: str, token: str) -> dict[str, Any] | None:
    with site.store.read() as conn:
        row = (
            conn.execute(
                select(refresh_tokens).where(
                    refresh_tokens.c.id == token_hash(token), refresh_tokens.c.tenant == tenant
                )
            )
            .mappings()
            .first()
        )
    return None if row is None else dict(row)


def _token_param(form: dict[str, str]) -> tuple[str, str | None]:
    token = form.get("token")
    if not token:
        raise errors.invalid_request("token is required")
    hint = form.get("token_type_hint")
    if hint is not None and hint not in HINTS:
        raise errors.oauth_error("unsupported_token_type", f"token_type_hint {hint[:40]!r}")
    return token, hint


def revoke(site: Site, tenant: str, client: AuthenticatedClient, form: dict[str, str]) -> None:
    """Revoke a refresh token (its whole family) or an access token (by jti). Unknown
    tokens and tokens of other clients are answered 200 and left alone (RFC 7009 2.2)."""
    token, _ = _token_param(form)
    at = now(site)
    row = _refresh_row(site, tenant, token)
    if row is not None:
        if row["client_id"] == client.id and row["revoked_at"] is None:
            with site.store.write() as w:
                families.revoke_family(w, tenant, row["family"], at, "revoked_by_client")
        return
    try:
        claims = verify_ours(site, token, issuer=issuer(site, tenant), check_exp=True)
    except InvalidToken:
        return
    jti, exp = claims.get("jti"), claims.get("exp")
    if claims.get("client_id") == client.id and isinstance(jti, str) and isinstance(exp, int):
        with site.store.write() as w:
            families.revoke_jti(w, tenant, jti, exp * US, at, "revoked_by_client")


def may_introspect(site: Site, tenant: str, caller: AuthenticatedClient, owner: Any) -> bool:
    """True if ``caller`` may learn about a token issued to the client ``owner``: it is
    that client, or one of the resource servers that client names."""
    if not isinstance(owner, str):
        return False
    if owner == caller.id:
        return True
    row = get_client_row(site, tenant, owner)
    return row is not None and caller.id in json_list(row["resource_servers"])


def introspect(
    site: Site, tenant: str, client: AuthenticatedClient, form: dict[str, str]
) -> dict[str, Any]:
    token, hint = _token_param(form)
    at = now(site)
    if hint != "access_token":
        row = _refresh_row(site, tenant, token)
        if row is not None:
            live = row["revoked_at"] is None and row["used_at"] is None and at < row["expires_at"]
            if not live or not may_introspect(site, tenant, client, row["client_id"]):
                return {"active": False}
            return {
                "active": True,
                "token_type": "refresh_token",
                "client_id": row["client_id"],
                "sub": row["user_id"],
                "scope": row["scope"],
                "iat": row["created_at"] // US,
                "exp": row["expires_at"] // US,
                "iss": issuer(site, tenant),
            }
    try:
        claims = verify_access_token(site, tenant, token)
    except InvalidToken:
        return {"active": False}
    if not may_introspect(site, tenant, client, claims.get("client_id")):
        return {"active": False}
    keep = ("scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti", "auth_time", "acr")
    return {"active": True, "token_type": "Bearer", **{k: claims[k] for k in keep if k in claims}}
