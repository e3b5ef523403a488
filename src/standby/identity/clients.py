"""OIDC client records. A confidential client's secret is generated here, returned once
and stored argon2-hashed; public clients (auth method ``none``) have no secret."""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import select

from standby.errors import ApiError
from standby.identity import audit
from standby.identity.clock import now
from standby.identity.passwords import passwords_for
from standby.identity.tenants import unknown_tenant
from standby.store.schema import clients, tenants

if TYPE_CHECKING:
    from standby.server import Site

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
JSON_COLUMNS = (
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "scopes",
    "resource_servers",
)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


def check_redirect_uri(uri: str) -> None:
    """Absolute https, or http only to the loopback host (native apps); no fragment."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
    except ValueError:
        parts, host = None, ""
    ok = (
        parts is not None
        and not parts.fragment
        and bool(host)
        and (parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS))
    )
    if not ok:
        raise ApiError(
            400,
            "invalid_redirect_uri",
            f"redirect URI {uri[:200]!r} is not allowed; use an absolute https:// URI "
            "(or http://127.0.0.1 / http://localhost for native apps) without a fragment",
        )


def check_client(
    auth_method: str, grant_types: list[str], redirect_uris: list[str], jwks: Any
) -> None:
    if auth_method not in AUTH_METHODS:
        raise ApiError(
            400,
            "invalid_client_metadata",
            f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}",
        )
    unknown = [g for g in grant_types if g not in GRANT_TYPES]
    if unknown or not grant_types:
        raise ApiError(
            400,
            "invalid_client_metadata",
            f"grant_types must be a non-empty subset of {', '.join(GRANT_TYPES)}",
        )
    if "authorization_code" in grant_types and not redirect_uris:
        raise ApiError(
            400, "invalid_client_metadata", "authorization_code needs at least one redirect URI"
        )
    if auth_method == "none" and "client_credentials" in grant_types:
        raise ApiError(
            400,
            "invalid_client_metadata",
            "a public client (auth method none) cannot use client_credentials",
        )
    if auth_method == "private_key_jwt" and not jwks:
        raise ApiError(400, "invalid_client_metadata", "private_key_jwt needs the client's jwks")
    for uri in redirect_uris:
        check_redirect_uri(uri)


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A client row fit to show: JSON columns decoded, secret hash dropped."""
    out = {k: v for k, v in row.items() if k != "secret_hash"}
    for col in JSON_COLUMNS:
        out[col] = json.loads(row[col] or "[]")
    out["jwks"] = json.loads(row["jwks"]) if row.get("jwks") else None
    out["client_id"] = row["id"]
    return out


def create_client(
    site: Site,
    tenant: str,
    name: str,
    *,
    redirect_uris: list[str],
    grant_types: list[str],
    scopes: list[str],
    token_endpoint_auth_method: str,
    post_logout_redirect_uris: list[str] | None = None,
    jwks: dict[str, Any] | None = None,
    first_party: bool = False,
    resource_servers: list[str] | None = None,
    actor: str = "admin",
) -> dict[str, Any]:
    """Register a client; the result holds ``client_secret`` once (confidential clients).
    ``first_party``: no consent page, and refresh tokens without offline_access;
    ``resource_servers``: client ids that may introspect this client's tokens."""
    check_client(token_endpoint_auth_method, grant_types, redirect_uris, jwks)
    for uri in post_logout_redirect_uris or []:
        check_redirect_uri(uri)
    check_resource_servers(site, tenant, resource_servers or [])
    secret = secrets.token_urlsafe(32) if token_endpoint_auth_method in SECRET_METHODS else None
    secret_hash = passwords_for(site).hash(secret) if secret else None
    at = now(site)
    with site.store.write() as w:
        if w.get(tenants, tenant) is None:
            raise unknown_tenant(tenant)
        row = w.insert(
            clients,
            {
                "id": secrets.token_urlsafe(16),
                "tenant": tenant,
                "name": name,
                "secret_hash": secret_hash,
                "redirect_uris": json.dumps(redirect_uris),
                "post_logout_redirect_uris": json.dumps(post_logout_redirect_uris or []),
                "grant_types": json.dumps(grant_types),
                "scopes": json.dumps(scopes),
                "token_endpoint_auth_method": token_endpoint_auth_method,
                "jwks": json.dumps(jwks) if jwks else None,
                "created_at": at,
                "first_party": first_party,
                "resource_servers": json.dumps(resource_servers or []),
            },
        )
        audit.record(
            w,
            tenant,
            actor,
            "client.create",
            row["id"],
            "ok",
            {"name": name, "auth_method": token_endpoint_auth_method},
            at=at,
        )
    out = public(row)
    if secret:
        out["client_secret"] = secret
    return out


def check_resource_servers(site: Site, tenant: str, client_ids: list[str]) -> None:
    """Every resource server named must be a client of the tenant (a typo would
    otherwise silently leave the real resource server unable to introspect)."""
    for client_id in client_ids:
        if get_client_row(site, tenant, client_id) is None:
            raise ApiError(
                400,
                "invalid_client_metadata",
                f"resource_servers: {client_id[:70]!r} is not a client of this tenant",
            )


def get_client_row(site: Site, tenant: str, client_id: str) -> dict[str, Any] | None:
    with site.store.read() as conn:
        row = (
            conn.execute(
                select(clients).where(clients.c.tenant == tenant, clients.c.id == client_id)
            )
            .mappings()
            .first()
        )
    return None if row is None else dict(row)


def get_client(site: Site, tenant: str, client_id: str) -> dict[str, Any] | None:
    row = get_client_row(site, tenant, client_id)
    return None if row is None else public(row)


def verify_client_secret(site: Site, tenant: str, client_id: str, secret: str) -> bool:
    """True if the client exists, is confidential and ``secret`` matches its hash."""
    row = get_client_row(site, tenant, client_id)
    return passwords_for(site).verify(row["secret_hash"] if row else None, secret)


def list_clients(site: Site, tenant: str) -> list[dict[str, Any]]:
    with site.store.read() as conn:
        rows = conn.execute(
            select(clients).where(clients.c.tenant == tenant).order_by(clients.c.name)
        ).mappings()
        return [public(dict(r)) for r in rows]


def update_client(
    site: Site, tenant: str, client_id: str, changes: dict[str, Any], actor: str
) -> dict[str, Any]:
    """Change name, redirect URIs, grant types, scopes (auth method and secret stay)."""
    current = get_client(site, tenant, client_id)
    if current is None:
        raise client_not_found(client_id)
    merged = {**current, **{k: v for k, v in changes.items() if v is not None}}
    check_client(
        merged["token_endpoint_auth_method"],
        merged["grant_types"],
        merged["redirect_uris"],
        merged["jwks"],
    )
    for uri in merged["post_logout_redirect_uris"]:
        check_redirect_uri(uri)
    if changes.get("resource_servers"):
        check_resource_servers(site, tenant, changes["resource_servers"])
    values: dict[str, Any] = {}
    for k, v in changes.items():
        if v is None:
            continue
        values[k] = json.dumps(v) if k in JSON_COLUMNS or k == "jwks" else v
    at = now(site)
    if not values:  # nothing to change: answer the client as it is, write nothing
        return current
    with site.store.write() as w:
        if w.get(clients, client_id) is None:
            raise client_not_found(client_id)
        row = w.update(clients, client_id, values)
        audit.record(
            w, tenant, actor, "client.update", client_id, "ok", {"fields": sorted(values)}, at=at
        )
    return public(row)


def delete_client(site: Site, tenant: str, client_id: str, actor: str) -> None:
    at = now(site)
    with site.store.write() as w:
        row = w.get(clients, client_id)
        if row is None or row["tenant"] != tenant:
            raise client_not_found(client_id)
        w.delete(clients, client_id)
        audit.record(
            w, tenant, actor, "client.delete", client_id, "ok", {"name": row["name"]}, at=at
        )


def client_not_found(client_id: str) -> ApiError:
    return ApiError(
        404, "unknown_client", f"client {client_id[:70]!r} does not exist in this tenant"
    )
