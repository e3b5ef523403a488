"""Password reset tokens: random, stored as sha256, single use, expiring.

Redeeming one sets the new password, clears any lockout and revokes every session."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from standby.errors import ApiError
from standby.identity import audit
from standby.identity.clock import US, now
from standby.identity.passwords import passwords_for
from standby.identity.tokens import new_token, token_hash
from standby.identity.users import get_user_row, locked_row, not_found, set_password_in
from standby.store.schema import reset_tokens

if TYPE_CHECKING:
    from standby.server import Site

DEFAULT_TTL = 3600
MAX_TTL = 7 * 86400


def issue_reset_token(
    site: Site, tenant: str, user_id: str, actor: str, ttl: int = DEFAULT_TTL
) -> dict[str, Any]:
    """A new reset token for a user; the token is in the result once and never stored."""
    at = now(site)
    token = new_token()
    with site.store.write() as w:
        locked_row(w, tenant, user_id)
        w.insert(
            reset_tokens,
            {
                "id": token_hash(token),
                "tenant": tenant,
                "user_id": user_id,
                "created_at": at,
                "expires_at": at + ttl * US,
                "used_at": None,
            },
        )
        audit.record(w, tenant, actor, "user.reset_token", user_id, "ok", {"ttl": ttl}, at=at)
    return {"token": token, "user_id": user_id, "expires_at": at + ttl * US}


def token_usable(row: dict[str, Any] | None, tenant: str, at: int) -> bool:
    """Pure decision: the token row exists in this tenant, is unused and not expired."""
    return (
        row is not None
        and row["tenant"] == tenant
        and row["used_at"] is None
        and at < int(row["expires_at"])
    )


def invalid_token() -> ApiError:
    return ApiError(
        400,
        "invalid_token",
        "the reset token is unknown, already used or expired; ask for a new one",
    )


def redeem_reset_token(site: Site, tenant: str, token: str, new_password: str) -> str:
    """Set a new password with a reset token; returns the user id."""
    key = token_hash(token)
    at = now(site)
    with site.store.read() as conn:
        row = conn.execute(reset_tokens.select().where(reset_tokens.c.id == key)).mappings().first()
    found = None if row is None else dict(row)
    if not token_usable(found, tenant, at) or found is None:
        raise invalid_token()
    user = get_user_row(site, tenant, found["user_id"])
    if user is None:
        raise not_found(found["user_id"])
    pw = passwords_for(site)
    pw.check_policy(new_password, user["username"])
    password_hash = pw.hash(new_password)
    with site.store.write() as w:
        if not token_usable(w.get(reset_tokens, key), tenant, at):  # spent meanwhile
            raise invalid_token()
        w.update(reset_tokens, key, {"used_at": at})
        locked_row(w, tenant, user["id"])
        revoked = set_password_in(w, tenant, user["id"], password_hash, at)
        audit.record(
            w,
            tenant,
            f"user:{user['id']}",
            "user.reset_password",
            user["id"],
            "ok",
            {"revoked": revoked},
            at=at,
        )
    return str(user["id"])
