"""Carrying out a retention decision: manifests go first, so no manifest ever points at
an object that is already gone."""

from __future__ import annotations

import time
from typing import Any

from standby.backup.catalog import set_manifest, set_object
from standby.backup.context import Backups
from standby.backup.retention import SegmentInfo, SetInfo, decide


def prune(backups: Backups, *, dry_run: bool, now: float | None = None) -> dict[str, Any]:
    cat = backups.catalog
    verified = cat.verifications()
    sets = [
        SetInfo(
            str(m["id"]),
            float(m["created_at"]),
            int(m["lsn"]),
            bool(verified.get(str(m["id"]), {}).get("ok")) or None,
        )
        for m in cat.sets(strict=False)
        if "error" not in m
    ]
    segs = [SegmentInfo(s.manifest_name, s.first_lsn, s.last_lsn) for s in cat.segments()]
    cfg = backups.settings.backup
    d = decide(
        sets,
        segs,
        now=time.time() if now is None else now,
        keep_count=cfg.keep_count,
        keep_days=cfg.keep_days,
    )
    if not dry_run:
        for sid in d.delete_sets:
            backups.storage.delete(set_manifest(sid))
            backups.storage.delete(set_object(sid))
            for obj in backups.storage.list(f"verify/{sid}/"):
                backups.storage.delete(obj.name)
        for name in d.delete_segments:
            backups.storage.delete(name)
            backups.storage.delete(name[: -len(".json")] + ".sbk")
    return {
        "dry_run": dry_run,
        "keep_sets": {sid: d.reasons[sid] for sid in d.keep_sets},
        "delete_sets": d.delete_sets,
        "delete_segments": [n[: -len(".json")] for n in d.delete_segments],
    }
