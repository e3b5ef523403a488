"""Change-log retention on a primary: trim what every standby applied and the archive holds.

The decision is ``standby.store.trim.trim_point``; this module gathers its inputs (the
standbys this primary has seen, persisted so a restart keeps waiting for them, and the
newest archived segment) and runs it on a schedule. When the log grows past
``store.alert_records`` because a standby or the archive lags, it alerts instead of
dropping anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from standby.store.trim import trim_point

if TYPE_CHECKING:
    from fastapi import FastAPI

    from standby.server import Site

log = logging.getLogger("standby.logtrim")
STANDBY_PREFIX = "standby:"


@dataclass
class TrimOutcome:
    upto: int
    removed: int
    held: int  # records still in the log afterwards
    over_alert: bool


def registered_standbys(site: Site) -> dict[str, int]:
    """Standbys that must apply a record before it goes: every one this primary has seen
    (persisted), at the newest position it has acknowledged."""
    from standby.replication.state import state_of

    known = {name: int(v) for name, v in site.store.meta_items(STANDBY_PREFIX).items()}
    for name, peer in state_of(site).peers.items():
        if name not in known or peer.lsn > known[name]:
            site.store.set_meta(STANDBY_PREFIX + name, str(peer.lsn))
            known[name] = peer.lsn
    return known


def archived_lsn(site: Site) -> int | None:
    """Newest LSN the backup archive holds, or None when this site does not archive."""
    if not site.settings.backup.archive:
        return None
    from standby.backup.schedule import PART, BackupService

    svc = site.parts.get(PART)
    if not isinstance(svc, BackupService):
        return None
    seg = svc.backups().catalog.last_segment()
    return seg.last_lsn if seg is not None else 0


def trim_once(site: Site) -> TrimOutcome | None:
    if site.role != "primary":
        return None
    cfg = site.settings.store
    head = site.store.head().lsn
    oldest = site.store.oldest_lsn()
    removed, upto = 0, 0
    standbys = registered_standbys(site)  # every tick: a standby seen once is waited for
    # Only records older than the kept tail can go; while there are none, skip listing
    # the archive (every tick would otherwise do that I/O for nothing).
    if head - cfg.keep_records >= oldest:
        upto = trim_point(head, standbys.values(), archived_lsn(site), cfg.keep_records)
        if upto > 0:
            removed = site.store.trim(upto)
            oldest = site.store.oldest_lsn()
    held = head - oldest + 1
    outcome = TrimOutcome(upto, removed, max(held, 0), held > cfg.alert_records)
    if removed:
        log.info(
            json.dumps(
                {"event": "changelog_trimmed", "site": site.name, "upto": upto, "removed": removed}
            )
        )
    if outcome.over_alert:
        log.warning(
            json.dumps(
                {
                    "event": "changelog_retention_alert",
                    "site": site.name,
                    "held": outcome.held,
                    "alert_records": cfg.alert_records,
                    "why": "a registered standby or the backup archive has not caught up; records "
                    "are kept until they do (remove a decommissioned standby's "
                    f"'{STANDBY_PREFIX}NAME' entry from store_meta to release them)",
                }
            )
        )
    site.parts["logtrim"] = outcome
    return outcome


async def _trim_loop(site: Site) -> None:
    while True:  # for the process lifetime; the server cancels it at shutdown
        await asyncio.sleep(site.settings.store.trim_interval)
        try:
            await asyncio.to_thread(trim_once, site)
        except Exception as exc:  # noqa: BLE001 - retention must never stop the site
            log.error(
                json.dumps({"event": "changelog_trim_failed", "site": site.name, "error": str(exc)})
            )


def mount(app: FastAPI, site: Site) -> None:
    site.background.append(_trim_loop)

    def held() -> float | None:
        outcome = site.parts.get("logtrim")
        return float(outcome.held) if isinstance(outcome, TrimOutcome) else None

    def alert() -> float | None:
        outcome = site.parts.get("logtrim")
        return float(outcome.over_alert) if isinstance(outcome, TrimOutcome) else None

    site.metrics.gauge_callback(
        "standby_changelog_records_held", "Change-log records this primary still holds", held
    )
    site.metrics.gauge_callback(
        "standby_changelog_retention_alert",
        "1 when the log exceeds store.alert_records because a standby or the archive lags",
        alert,
    )
