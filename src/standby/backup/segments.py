"""The segment archiver: change-log records after the last archived LSN, sealed into
encrypted segments every ``segment_seconds`` or ``segment_records`` records.

A segment always ends at a transaction boundary, so restoring to any segment's end
never leaves half a transaction. Object first, manifest last: a reader only trusts a
segment whose manifest exists, so an interrupted upload is never mistaken for one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from standby.backup import crypto, manifest
from standby.backup.catalog import Catalog, segment_base
from standby.backup.manifest import ObjectRef
from standby.store import Record, Store

log = logging.getLogger("standby.backup")

MAX_SEGMENTS_PER_RUN = 10000


def encode(records: list[Record]) -> bytes:
    return ("\n".join(r.to_json() for r in records) + "\n").encode()


def decode(data: bytes) -> list[Record]:
    return [Record.from_dict(json.loads(line)) for line in data.decode().splitlines() if line]


class Archiver:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        *,
        segment_seconds: float,
        segment_records: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.seconds = segment_seconds
        self.records = segment_records
        self.clock = clock
        self._last: int | None = None  # last archived LSN (cached after the first look)

    def last_archived(self) -> int:
        if self._last is None:
            seg = self.catalog.last_segment()
            if seg is not None:
                self._last = seg.last_lsn
            else:
                sets = [s for s in self.catalog.sets(strict=False) if "error" not in s]
                # Nothing archived yet: start at the newest snapshot, else the log's start.
                self._last = (
                    max(int(s["lsn"]) for s in sets) if sets else self.store.oldest_lsn() - 1
                )
        return self._last

    def _pending(self) -> list[Record]:
        batch = self.store.records_after(self.last_archived(), limit=self.records)
        # Finish the last transaction so the segment ends on a boundary.
        for _ in range(1_000_000):
            if not batch:
                break
            more = self.store.records_after(batch[-1].lsn, limit=self.records)
            same = [r for r in more if r.txn == batch[-1].txn]
            batch.extend(same)
            if len(same) < len(more) or not more:
                break
        return batch

    def seal(self, records: list[Record]) -> dict[str, Any]:
        first, last = records[0], records[-1]
        base = segment_base(first.lsn, last.lsn, last.epoch)
        obj_name = base + ".sbk"
        blob = crypto.seal(self.catalog.keyring, obj_name, "segment", encode(records))
        self.catalog.storage.put(obj_name, blob)
        data = {
            "kind": "segment",
            "site": self.store.site,
            "first_lsn": first.lsn,
            "last_lsn": last.lsn,
            "first_time": first.committed_at,
            "last_time": last.committed_at,
            "epoch": last.epoch,
            "epochs": sorted({r.epoch for r in records}),
            "records": len(records),
            "prev_hash": first.prev_hash,
            "last_hash": last.hash,
            "sealed_at": self.clock(),
            "objects": [ObjectRef.of(obj_name, blob).to_dict()],
        }
        self.catalog.storage.put(base + ".json", manifest.sign(self.catalog.keyring, data))
        self._last = last.lsn
        log.info(
            json.dumps(
                {"event": "segment_sealed", "first": first.lsn, "last": last.lsn, "n": len(records)}
            )
        )
        return data

    def tick(self, force: bool = False) -> list[dict[str, Any]]:
        """Seal what is due (full segments, or records older than segment_seconds);
        with ``force`` seal everything pending now. Returns the new segment manifests."""
        sealed = []
        for _ in range(MAX_SEGMENTS_PER_RUN):
            batch = self._pending()
            if not batch:
                break
            age = self.clock() - batch[0].committed_at / 1e6
            if not (force or len(batch) >= self.records or age >= self.seconds):
                break
            sealed.append(self.seal(batch))
        return sealed
