"""Server-side sessions: idle and absolute timeouts, revocation per session and per user.

The cookie carries a random token; the row id is its sha256, so the store (and the
change log) never holds a usable session token."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from standby.identity import audit
from standby.identity.clock import US, now
from standby.identity.oidc.families import revoke_session_families
from standby.identity.tokens import new_token, token_hash
from standby.store import NotWritable, Writer
from standby.store.schema import sessions, users

if TYPE_CHECKING:
    from starlette.responses import Response

    from standby.server import Site

SESSION_COOKIE = "standby_session"
# last_seen is refreshed at most this often, so reading a session rarely writes.
REFRESH_EVERY_US = 60 * US

log = logging.getLogger("standby.identity.sessions")


def create_session(
    site: Site, tenant: str, user_id: str, amr: list[str], *, at: int | None = None
) -> tuple[str, dict[str, Any]]:
    """Start a session; returns (token for the cookie, row)."""
    at = now(site) if at is None else at
    with site.store.write() as w:
        return create_session_in(w, site, tenant, user_id, amr, at)


def create_session_in(
    w: Writer, site: Site, tenant: str, user_id: str, amr: list[str], at: int
) -> tuple[str, dict[str, Any]]:
    """Start a session inside an open write (e.g. the login's own transaction)."""
    token = new_token()
    row = w.insert(
        sessions,
        {
            "id": token_hash(token),
            "tenant": tenant,
            "user_id": user_id,
            "created_at": at,
            "last_seen": at,
            "expires_at": at + site.settings.session.absolute_ttl * US,
            "revoked_at": None,
            "amr": json.dumps(amr),
            "auth_time": at,
        },
    )
    return token, row


def set_session_cookie(response: Response, site: Site, tenant: str, token: str) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Secure per settings, scoped to the tenant."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=site.settings.session.absolute_ttl,
        path=f"/t/{tenant}",
        secure=site.settings.http.cookie_secure,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, tenant: str) -> None:
    response.delete_cookie(SESSION_COOKIE, path=f"/t/{tenant}")


def session_state(row: dict[str, Any], at: int, idle_ttl: int) -> str:
    """Pure decision: "active", "revoked", "expired" (absolute) or "idle" (idle timeout)."""
    if row["revoked_at"] is not None:
        return "revoked"
    if at >= row["expires_at"]:
        return "expired"
    if at >= row["last_seen"] + idle_ttl * US:
        return "idle"
    return "active"


def idle_expires_at(site: Site, row: dict[str, Any]) -> int:
    return min(int(row["expires_at"]), int(row["last_seen"]) + site.settings.session.idle_ttl * US)


def load_session(site: Site, tenant: str, token: str | None) -> dict[str, Any] | None:
    """The live session for ``token`` in ``tenant``, or None (unknown, revoked, expired,
    idle too long, or its user is gone or disabled). Refreshes last_seen at most once a
    minute; on a standby (or a fenced primary) it reads only."""
    if not token or len(token) > 256:
        return None
    at = now(site)
    with site.store.read() as conn:
        row = (
            conn.execute(
                select(sessions).where(
                    sessions.c.id == token_hash(token), sessions.c.tenant == tenant
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        user = conn.execute(
            select(users.c.disabled).where(users.c.id == row["user_id"], users.c.tenant == tenant)
        ).first()
    session = dict(row)
    if user is None or user.disabled:
        return None
    if session_state(session, at, site.settings.session.idle_ttl) != "active":
        return None
    if at - session["last_seen"] >= REFRESH_EVERY_US and site.role == "primary":
        try:
            with site.store.write() as w:
                current = w.get(sessions, session["id"])
                if current is not None and current["revoked_at"] is None:
                    session = w.update(sessions, session["id"], {"last_seen": at})
        except NotWritable as exc:
            log.info(json.dumps({"event": "session_touch_skipped", "why": str(exc)}))
    session["amr"] = json.loads(session["amr"])
    return session


def revoke_in(writer: Writer, row: dict[str, Any], at: int) -> bool:
    """Revoke a session and every refresh-token family issued under it, with their
    access tokens (which also carry the session id, so they stop verifying)."""
    if row["revoked_at"] is not None:
        return False
    writer.update(sessions, row["id"], {"revoked_at": at})
    revoke_session_families(writer, row["tenant"], row["id"], at)
    return True


def revoke_user_sessions_in(writer: Writer, tenant: str, user_id: str, at: int) -> int:
    """Revoke every live session of a user inside an open write; returns how many."""
    rows = writer.conn.execute(
        select(sessions).where(
            sessions.c.tenant == tenant,
            sessions.c.user_id == user_id,
            sessions.c.revoked_at.is_(None),
        )
    ).mappings()
    return sum(revoke_in(writer, dict(r), at) for r in list(rows))


def revoke_session(site: Site, tenant: str, session_id: str, actor: str) -> bool:
    """Revoke one session by id; False if there was no live session with that id."""
    at = now(site)
    with site.store.write() as w:
        row = w.get(sessions, session_id)
        if row is None or row["tenant"] != tenant or not revoke_in(w, row, at):
            return False
        audit.record(
            w,
            tenant,
            actor,
            "session.revoke",
            row["user_id"],
            "ok",
            {"session": session_id[:12]},
            at=at,
        )
    return True


def revoke_user_sessions(site: Site, tenant: str, user_id: str, actor: str) -> int:
    at = now(site)
    with site.store.write() as w:
        n = revoke_user_sessions_in(w, tenant, user_id, at)
        audit.record(w, tenant, actor, "session.revoke_all", user_id, "ok", {"count": n}, at=at)
    return n


def list_user_sessions(site: Site, tenant: str, user_id: str) -> list[dict[str, Any]]:
    with site.store.read() as conn:
        rows = conn.execute(
            select(sessions)
            .where(sessions.c.tenant == tenant, sessions.c.user_id == user_id)
            .order_by(sessions.c.created_at)
        ).mappings()
        return [dict(r) for r in rows]
