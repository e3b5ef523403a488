"""The service side: segment archiving, scheduled backups and scheduled verified restores
as the site's background tasks, and the last verified restore time in /metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from standby.backup.context import Backups
from standby.backup.errors import BackupError

if TYPE_CHECKING:
    from standby.server import Site

log = logging.getLogger("standby.backup")
PART = "backup"


class BackupService:
    """Backup state one site holds for its lifetime (kept in ``site.parts["backup"]``)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._backups: Backups | None = None
        self.last_verified: float | None = None
        self.last_verified_loaded = False
        self.last_result: dict[str, Any] | None = None

    def backups(self) -> Backups:
        if self._backups is None:
            self._backups = Backups.open(self.site.settings, self.site.secrets)
        return self._backups

    def last_verified_timestamp(self) -> float | None:
        if not self.last_verified_loaded:
            self.last_verified_loaded = True
            try:
                self.last_verified = self.backups().catalog.last_verified_ok()
            except BackupError:
                self.last_verified = None
        return self.last_verified

    def verify_now(self) -> dict[str, Any]:
        from standby.backup.verify import verify_set

        result = verify_set(self.backups())
        self.last_result = result
        if result["ok"]:
            self.last_verified = float(result["at"])
            self.last_verified_loaded = True
        return result

    def backup_now(self) -> dict[str, Any]:
        from standby.backup.create import create_set

        return create_set(self.site, self.backups())


async def _every(site: Site, seconds: float, name: str, job: Any) -> None:
    """Run ``job`` in a thread every ``seconds``; a failure is logged, never fatal."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await asyncio.to_thread(job)
        except Exception as exc:  # noqa: BLE001 - the schedule must survive a bad run
            log.error(json.dumps({"event": f"{name}_failed", "site": site.name, "error": str(exc)}))


async def _archive_loop(site: Site) -> None:
    from standby.backup.segments import Archiver

    svc: BackupService = site.parts[PART]
    cfg = site.settings.backup
    archiver: Archiver | None = None
    poll = min(max(cfg.segment_seconds / 4, 0.01), 1.0)
    while True:
        try:
            if site.role == "primary":
                if archiver is None:
                    b = svc.backups()
                    archiver = Archiver(
                        site.store,
                        b.catalog,
                        segment_seconds=cfg.segment_seconds,
                        segment_records=cfg.segment_records,
                    )
                await asyncio.to_thread(archiver.tick)
        except Exception as exc:  # noqa: BLE001 - log and retry on the next tick
            archiver = None
            log.error(json.dumps({"event": "archive_failed", "site": site.name, "error": str(exc)}))
            await asyncio.sleep(min(5.0, cfg.segment_seconds))
        await asyncio.sleep(poll)


def install(site: Site) -> BackupService:
    svc = BackupService(site)
    site.parts[PART] = svc
    cfg = site.settings.backup
    site.metrics.gauge_callback(
        "standby_last_verified_restore_timestamp",
        "Unix time of the last backup verified by a full restore and canary login",
        svc.last_verified_timestamp,
    )
    if site.secrets.backup_key is None:
        return svc
    if cfg.archive:
        site.background.append(_archive_loop)
    if cfg.schedule_backup_seconds:
        every = cfg.schedule_backup_seconds

        async def _backups(s: Site) -> None:
            await _every(s, every, "scheduled_backup", svc.backup_now)

        site.background.append(_backups)
    if cfg.schedule_verify_seconds:
        every_v = cfg.schedule_verify_seconds

        async def _verify(s: Site) -> None:
            await _every(s, every_v, "scheduled_verify", svc.verify_now)

        site.background.append(_verify)
    return svc


__all__ = ["PART", "BackupService", "install", "time"]
