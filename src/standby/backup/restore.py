"""Point-in-time restore: plan (newest set before the target + segment chain), load and
check everything, then write it into the target so it appears only when complete."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from standby.backup import target as target_store
from standby.backup.context import Backups
from standby.backup.load import Progress, load
from standby.backup.plan import Target, format_us, plan
from standby.store.engine import describe

log = logging.getLogger("standby.backup")


def restore(
    backups: Backups,
    url: str,
    target: Target,
    *,
    tenant: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Restore into the store at ``url``; return a report of the exact point reached."""
    started = time.monotonic()
    target_store.check(url)  # a bad target fails now, not after loading every object
    p = plan(backups.catalog.sets(strict=False), backups.catalog.segments(), target)
    loaded = load(backups, p, target, tenant, progress)
    target_store.write(url, loaded, site=backups.settings.site, force=force, progress=progress)
    report = {
        "target": describe(url),
        "requested": target.describe(),
        "set": loaded.set["id"],
        "snapshot_lsn": loaded.snapshot.head.lsn,
        "reached": {
            "lsn": loaded.lsn,
            "epoch": loaded.epoch,
            "committed_at": loaded.committed_at,
            "time": format_us(loaded.committed_at) if loaded.committed_at else None,
        },
        "segments": len(p.segments),
        "records_replayed": len(loaded.records),
        "rows": sum(loaded.snapshot.counts().values()),
        "tenant": tenant,
        "notes": loaded.notes,
        "seconds": round(time.monotonic() - started, 3),
    }
    log.info(json.dumps({"event": "restored", **{k: report[k] for k in ("set", "reached")}}))
    return report
