"""Users: create, read, update, delete, set password. Rows leave this module without
their password hash or TOTP secret."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from standby.errors import ApiError
from standby.identity import audit
from standby.identity.clock import now
from standby.identity.passwords import passwords_for
from standby.identity.sessions import revoke_user_sessions_in
from standby.identity.tenants import unknown_tenant
from standby.identity.tokens import new_id
from standby.store import Conflict, Writer
from standby.store.schema import (
    consents,
    group_members,
    recovery_codes,
    reset_tokens,
    tenants,
    users,
)

if TYPE_CHECKING:
    from standby.server import Site

PRIVATE_COLUMNS = ("password_hash", "totp_secret", "totp_last_step")


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A user row fit to show: no password hash, no TOTP secret."""
    return {k: v for k, v in row.items() if k not in PRIVATE_COLUMNS}


def not_found(user_id: str) -> ApiError:
    return ApiError(404, "unknown_user", f"user {user_id[:70]!r} does not exist in this tenant")


def create_user(
    site: Site,
    tenant: str,
    username: str,
    password: str | None,
    *,
    email: str | None = None,
    display_name: str | None = None,
    actor: str = "admin",
) -> dict[str, Any]:
    """Create a user (password checked against the policy); returns the public row."""
    pw = passwords_for(site)
    password_hash = None
    if password is not None:
        pw.check_policy(password, username)
        password_hash = pw.hash(password)
    at = now(site)
    with site.store.write() as w:
        if w.get(tenants, tenant) is None:
            raise unknown_tenant(tenant)
        if _find(w, tenant, username) is not None:
            raise duplicate(username)
        try:
            row = w.insert(
                users,
                {
                    "id": new_id(),
                    "tenant": tenant,
                    "username": username,
                    "email": email,
                    "display_name": display_name,
                    "password_hash": password_hash,
                    "disabled": False,
                    "failed_logins": 0,
                    "totp_enabled": False,
                    "created_at": at,
                    "updated_at": at,
                },
            )
        except Conflict:
            raise duplicate(username) from None
        audit.record(
            w, tenant, actor, "user.create", row["id"], "ok", {"username": username}, at=at
        )
    return public(row)


def duplicate(username: str) -> ApiError:
    return ApiError(409, "duplicate_username", f"username {username!r} is taken in this tenant")


def _find(w: Writer, tenant: str, username: str) -> dict[str, Any] | None:
    row = (
        w.conn.execute(select(users).where(users.c.tenant == tenant, users.c.username == username))
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def find_user_row(site: Site, tenant: str, username: str) -> dict[str, Any] | None:
    """The full row (with secrets) by username: for authentication only."""
    with site.store.read() as conn:
        row = (
            conn.execute(
                select(users).where(users.c.tenant == tenant, users.c.username == username)
            )
            .mappings()
            .first()
        )
    return None if row is None else dict(row)


def get_user_row(site: Site, tenant: str, user_id: str) -> dict[str, Any] | None:
    with site.store.read() as conn:
        row = (
            conn.execute(select(users).where(users.c.tenant == tenant, users.c.id == user_id))
            .mappings()
            .first()
        )
    return None if row is None else dict(row)


def find_user(site: Site, tenant: str, username: str) -> dict[str, Any] | None:
    row = find_user_row(site, tenant, username)
    return None if row is None else public(row)


def get_user(site: Site, tenant: str, user_id: str) -> dict[str, Any] | None:
    row = get_user_row(site, tenant, user_id)
    return None if row is None else public(row)


def require_user(site: Site, tenant: str, user_id: str) -> dict[str, Any]:
    row = get_user(site, tenant, user_id)
    if row is None:
        raise not_found(user_id)
    return row


def list_users(
    site: Site, tenant: str, after: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Users ordered by username, after the username ``after`` (paging cursor)."""
    q = select(users).where(users.c.tenant == tenant).order_by(users.c.username).limit(limit)
    if after:
        q = q.where(users.c.username > after)
    with site.store.read() as conn:
        return [public(dict(r)) for r in conn.execute(q).mappings()]


def locked_row(w: Writer, tenant: str, user_id: str) -> dict[str, Any]:
    """The user row inside a write, locked against concurrent updates (PostgreSQL)."""
    row = (
        w.conn.execute(
            select(users).where(users.c.tenant == tenant, users.c.id == user_id).with_for_update()
        )
        .mappings()
        .first()
    )
    if row is None:
        raise not_found(user_id)
    return dict(row)


def update_user(
    site: Site, tenant: str, user_id: str, changes: dict[str, Any], actor: str
) -> dict[str, Any]:
    """Change email, display_name or disabled; ``unlock=True`` clears a lockout.
    Disabling a user revokes their sessions in the same transaction."""
    allowed = {"email", "display_name", "disabled"}
    fields = {k: v for k, v in changes.items() if k in allowed}
    at = now(site)
    with site.store.write() as w:
        current = locked_row(w, tenant, user_id)
        if changes.get("unlock"):
            fields.update(failed_logins=0, locked_until=None)
        if not fields:  # nothing to change: answer the user as they are, write nothing
            return public(current)
        row = w.update(users, user_id, {**fields, "updated_at": at})
        revoked = revoke_user_sessions_in(w, tenant, user_id, at) if fields.get("disabled") else 0
        audit.record(
            w,
            tenant,
            actor,
            "user.update",
            user_id,
            "ok",
            {"fields": sorted(k for k in changes if changes[k] is not None), "revoked": revoked},
            at=at,
        )
    return public(row)


def delete_user(site: Site, tenant: str, user_id: str, actor: str) -> None:
    """Delete a user with their sessions, memberships, recovery codes, reset tokens and
    consents."""
    at = now(site)
    with site.store.write() as w:
        row = locked_row(w, tenant, user_id)
        revoke_user_sessions_in(w, tenant, user_id, at)
        for table in (group_members, recovery_codes, reset_tokens, consents):
            ids = w.conn.execute(
                select(table.c.id).where(table.c.tenant == tenant, table.c.user_id == user_id)
            ).scalars()
            for key in list(ids):
                w.delete(table, key)
        w.delete(users, user_id)
        audit.record(
            w, tenant, actor, "user.delete", user_id, "ok", {"username": row["username"]}, at=at
        )


def set_password_in(w: Writer, tenant: str, user_id: str, password_hash: str, at: int) -> int:
    """Store a new hash, clear any lockout and revoke every session; returns sessions revoked."""
    w.update(
        users,
        user_id,
        {
            "password_hash": password_hash,
            "failed_logins": 0,
            "locked_until": None,
            "updated_at": at,
        },
    )
    return revoke_user_sessions_in(w, tenant, user_id, at)


def set_password(site: Site, tenant: str, user_id: str, password: str, actor: str) -> None:
    """Set a user's password (policy-checked); revokes their sessions."""
    current = get_user_row(site, tenant, user_id)
    if current is None:
        raise not_found(user_id)
    pw = passwords_for(site)
    pw.check_policy(password, current["username"])
    password_hash = pw.hash(password)
    at = now(site)
    with site.store.write() as w:
        locked_row(w, tenant, user_id)
        revoked = set_password_in(w, tenant, user_id, password_hash, at)
        audit.record(
            w, tenant, actor, "user.set_password", user_id, "ok", {"revoked": revoked}, at=at
        )
