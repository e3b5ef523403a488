"""Deleting grants nobody can use any more: expired authorization codes, refresh-token
families past their absolute expiry, and revocation / assertion-id records of tokens
that have expired anyway. Deletes go through the change log, so standbys tidy up too."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from sqlalchemy import Table, select

from standby.identity.clock import US, now
from standby.store import NotWritable
from standby.store.schema import auth_codes, refresh_tokens, revocations

if TYPE_CHECKING:
    from standby.server import Site

log = logging.getLogger("standby.identity.oidc.cleanup")

# Kept a little past expiry so a verifier with clock skew still sees a revocation.
GRACE_US = 120 * US
BATCH = 500
EVERY_SECONDS = 60.0


def purge_expired(site: Site, limit: int = BATCH) -> int:
    """Delete up to ``limit`` expired rows per table; returns how many went."""
    cutoff = now(site) - GRACE_US
    removed = 0
    for table in (auth_codes, refresh_tokens, revocations):
        removed += _purge(site, table, cutoff, limit)
    return removed


def _purge(site: Site, table: Table, cutoff: int, limit: int) -> int:
    with site.store.read() as conn:
        ids = list(
            conn.execute(
                select(table.c.id).where(table.c.expires_at < cutoff).limit(limit)
            ).scalars()
        )
    if not ids:
        return 0
    with site.store.write() as w:
        return sum(w.delete(table, key) for key in ids)


async def cleanup_schedule(site: Site) -> None:
    """Background task on a primary: purge expired grants once a minute."""
    while True:  # for the process lifetime; the server cancels it at shutdown
        await asyncio.sleep(EVERY_SECONDS)
        if site.role != "primary":
            continue
        try:
            n = await asyncio.to_thread(purge_expired, site)
        except NotWritable:
            continue
        except Exception as exc:  # noqa: BLE001 - keep the schedule alive; log why
            log.error(json.dumps({"event": "grant_cleanup_failed", "error": str(exc)}))
            continue
        if n:
            log.info(json.dumps({"event": "grants_purged", "site": site.name, "rows": n}))
