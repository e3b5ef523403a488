"""Audit events, written in the same transaction as the change they describe."""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from standby.store import Writer, now_us
from standby.store.schema import audit_events

if TYPE_CHECKING:
    from standby.server import Site

# detail keys that must never be written, whatever a caller passes
_SECRET_KEYS = {"password", "secret", "token", "code", "totp", "recovery_code", "client_secret"}


def event_id(writer: Writer) -> str:
    """Ids sort in log order (the LSN the event's record will get, then random), so paging
    by id is paging in commit order and the cursor is simply the last id seen."""
    # Before the transaction's first change the head is read in the same transaction;
    # concurrent writers on PostgreSQL may then tie, and the random part breaks the tie.
    lsn = (writer.records[-1].lsn if writer.records else writer.store._head(writer.conn).lsn) + 1
    return f"{lsn:016d}-{secrets.token_hex(6)}"


def record(
    writer: Writer,
    tenant: str | None,
    actor: str,
    action: str,
    target: str | None,
    outcome: str,
    detail: dict[str, Any] | None = None,
    *,
    at: int | None = None,
) -> dict[str, Any]:
    """Append one audit event through ``writer`` (so it commits with the change)."""
    at = now_us() if at is None else at
    clean = {k: v for k, v in (detail or {}).items() if k not in _SECRET_KEYS}
    return writer.insert(
        audit_events,
        {
            "id": event_id(writer),
            "tenant": tenant,
            "at": at,
            "actor": actor[:255],
            "action": action,
            "target": None if target is None else target[:255],
            "outcome": outcome,
            "detail": json.dumps(clean, sort_keys=True, default=str),
        },
    )


def list_events(
    site: Site, tenant: str | None, after: str | None = None, limit: int = 100
) -> tuple[list[dict[str, Any]], str | None]:
    """Events in time order after the cursor ``after``; returns (events, next cursor)."""
    q = select(audit_events).order_by(audit_events.c.id).limit(limit)
    if tenant is not None:
        q = q.where(audit_events.c.tenant == tenant)
    if after:
        q = q.where(audit_events.c.id > after)
    with site.store.read() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
    for r in rows:
        r["detail"] = json.loads(r["detail"] or "{}")
    cursor = rows[-1]["id"] if len(rows) == limit else None
    return rows, cursor
