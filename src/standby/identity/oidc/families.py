"""Stored grants: authorization codes, refresh-token families and access-token
revocations. Everything is keyed by sha256 and written through the change log, so a
token revoked before a failover stays revoked after it.

Each refresh token records the access token issued with it, so revoking a family (reuse,
a replayed code, revocation by the client, a revoked session) revokes those access
tokens too."""

from __future__ import annotations

import json
import secrets
from typing import Any

from sqlalchemy import Table, select

from standby.identity.oidc.tokens import revocation_id
from standby.identity.tokens import token_hash
from standby.store import Writer
from standby.store.schema import auth_codes, refresh_tokens, revocations


def new_secret_token() -> str:
    return secrets.token_urlsafe(32)


def locked_row(w: Writer, table: Table, key: str, tenant: str) -> dict[str, Any] | None:
    """The row, locked for this transaction (PostgreSQL; SQLite writes are serialised)."""
    row = (
        w.conn.execute(
            select(table).where(table.c.id == key, table.c.tenant == tenant).with_for_update()
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def insert_code(w: Writer, code: str, row: dict[str, Any]) -> None:
    w.insert(auth_codes, {"id": token_hash(code), **row})


def insert_refresh(
    w: Writer,
    tenant: str,
    *,
    family: str | None,
    client_id: str,
    user_id: str,
    session_id: str | None,
    scope: str,
    auth_time: int,
    amr: list[str],
    at: int,
    expires_at: int,
    access_jti: str,
    access_expires_at: int,
) -> tuple[str, str]:
    """A new refresh token, issued together with the access token ``access_jti``;
    returns (token, family). A new family is named by its first token's hash."""
    token = new_secret_token()
    rid = token_hash(token)
    family = family or rid
    w.insert(
        refresh_tokens,
        {
            "id": rid,
            "tenant": tenant,
            "family": family,
            "client_id": client_id,
            "user_id": user_id,
            "session_id": session_id,
            "scope": scope,
            "auth_time": auth_time,
            "amr": json.dumps(amr),
            "created_at": at,
            "expires_at": expires_at,
            "used_at": None,
            "revoked_at": None,
            "access_jti": access_jti,
            "access_expires_at": access_expires_at,
        },
    )
    return token, family


def revoke_family(w: Writer, tenant: str, family: str, at: int, reason: str) -> int:
    """Revoke every live token of a refresh-token family and the access tokens issued
    with them that have not expired yet (each change is logged)."""
    rows = list(
        w.conn.execute(
            select(
                refresh_tokens.c.id,
                refresh_tokens.c.access_jti,
                refresh_tokens.c.access_expires_at,
            ).where(
                refresh_tokens.c.tenant == tenant,
                refresh_tokens.c.family == family,
                refresh_tokens.c.revoked_at.is_(None),
            )
        )
    )
    for row in rows:
        w.update(refresh_tokens, row.id, {"revoked_at": at})
        if row.access_jti and row.access_expires_at and row.access_expires_at > at:
            revoke_jti(w, tenant, row.access_jti, row.access_expires_at, at, reason)
    return len(rows)


def revoke_session_families(w: Writer, tenant: str, session_id: str, at: int) -> int:
    """Revoke every family issued under a session (logout, password change, ...)."""
    families = {
        r.family
        for r in w.conn.execute(
            select(refresh_tokens.c.family).where(
                refresh_tokens.c.tenant == tenant,
                refresh_tokens.c.session_id == session_id,
                refresh_tokens.c.revoked_at.is_(None),
            )
        )
    }
    return sum(revoke_family(w, tenant, f, at, "session_revoked") for f in sorted(families))


def revoke_jti(w: Writer, tenant: str, jti: str, expires_at: int, at: int, reason: str) -> None:
    rid = revocation_id(jti)
    if w.get(revocations, rid) is None:
        w.insert(
            revocations,
            {
                "id": rid,
                "tenant": tenant,
                "revoked_at": at,
                "expires_at": expires_at,
                "reason": reason,
            },
        )


def revoke_issued(w: Writer, tenant: str, issued: list[str], at: int) -> None:
    """Revoke what a code issued: entries are ``rt:<family>`` and ``at:<jti>:<exp us>``."""
    for entry in issued:
        kind, _, rest = entry.partition(":")
        if kind == "rt":
            revoke_family(w, tenant, rest, at, "code_reuse")
        elif kind == "at":
            jti, _, exp = rest.rpartition(":")
            revoke_jti(w, tenant, jti, int(exp), at, "code_reuse")
