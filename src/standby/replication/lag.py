"""Replication lag in records, bytes and seconds: pure arithmetic plus one log query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from standby.store import Store
from standby.store.schema import change_log


@dataclass(frozen=True)
class Lag:
    records: int
    bytes: int
    seconds: float

    def to_dict(self) -> dict[str, float | int]:
        return {"records": self.records, "bytes": self.bytes, "seconds": round(self.seconds, 6)}


ZERO = Lag(0, 0, 0.0)


def primary_view(
    head_lsn: int, acked_lsn: int, pending_bytes: int, oldest_unacked_us: int | None, now_us: int
) -> Lag:
    """How far a standby is behind, from the primary: what it has not acknowledged yet.

    Seconds = age of the oldest write the standby has not confirmed (0 when caught up).
    """
    records = max(0, head_lsn - acked_lsn)
    if records == 0 or oldest_unacked_us is None:
        return ZERO
    return Lag(records, pending_bytes, max(0.0, (now_us - oldest_unacked_us) / 1e6))


def standby_view(
    primary_head_lsn: int,
    position: int,
    primary_head_committed_at: int,
    applied_committed_at: int,
    pending_bytes: int,
    connected: bool,
    silent_for: float,
) -> Lag:
    """How far this standby is behind, from its own side.

    Seconds = commit-time distance between the primary's newest record and ours; when
    the primary went silent we cannot know what it wrote since, so report at least the
    time since we last heard from it.
    """
    records = max(0, primary_head_lsn - position)
    gap = (primary_head_committed_at - applied_committed_at) / 1e6 if records else 0.0
    seconds = max(0.0, gap)
    if not connected:
        seconds = max(seconds, silent_for)
    return Lag(records, pending_bytes if records else 0, seconds)


def unacked(
    store: Store, after_lsn: int, tenants: Sequence[str] | None = None
) -> tuple[int, int | None]:
    """(payload bytes, oldest commit time in us) of the records after ``after_lsn``."""
    # ~200 bytes of each NDJSON line are the record's fixed fields (hashes, lsn, names).
    size = func.coalesce(func.sum(func.coalesce(func.length(change_log.c.payload), 0) + 200), 0)
    q = select(size, func.min(change_log.c.committed_at)).where(change_log.c.lsn > after_lsn)
    if tenants is not None:
        q = q.where(change_log.c.tenant.in_(list(tenants)) | change_log.c.tenant.is_(None))
    with store.read() as conn:
        row = conn.execute(q).one()
    return int(row[0] or 0), None if row[1] is None else int(row[1])
