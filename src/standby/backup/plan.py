"""Choosing what to restore (pure): the newest set at or before the target, then the
chain of segments that continues it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from standby.backup.catalog import SegmentEntry
from standby.backup.errors import BackupError, NoBackup


@dataclass(frozen=True)
class Target:
    """Where to stop: an LSN, a commit time (UTC microseconds), or None for the end."""

    lsn: int | None = None
    time_us: int | None = None

    def describe(self) -> str:
        if self.lsn is not None:
            return f"lsn {self.lsn}"
        if self.time_us is not None:
            return f"time {format_us(self.time_us)}"
        return "the end of the archive"


@dataclass
class Plan:
    set: dict[str, Any]
    segments: list[SegmentEntry] = field(default_factory=list)
    # The first segment after a gap in the archive (records missing before it), if any.
    after_gap: SegmentEntry | None = None


def format_us(us: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).isoformat(timespec="microseconds")


def choose_set(sets: list[dict[str, Any]], target: Target) -> dict[str, Any]:
    usable = [s for s in sets if "error" not in s]
    if not usable and sets:
        raise BackupError(f"no backup set can be read: {sets[-1]['error']}")
    if not usable:
        raise NoBackup("there is no backup set; take one with `standby backup create`")
    if target.lsn is not None:
        fits = [s for s in usable if int(s["lsn"]) <= target.lsn]
    elif target.time_us is not None:
        fits = [s for s in usable if int(s["lsn_time"]) <= target.time_us]
    else:
        fits = usable
    if not fits:
        oldest = min(usable, key=lambda s: int(s["lsn"]))
        raise NoBackup(
            f"{target.describe()} is before the oldest backup (set {oldest['id']} at lsn "
            f"{oldest['lsn']}, last commit {format_us(int(oldest['lsn_time']))}); "
            "choose a later point"
        )
    return max(fits, key=lambda s: (int(s["lsn"]), float(s["created_at"])))


def plan(
    sets: list[dict[str, Any]],
    segments: list[SegmentEntry],
    target: Target,
    set_id: str | None = None,
) -> Plan:
    """The set to start from (newest fitting, or ``set_id``) and the segments after it."""
    if set_id is None:
        chosen = choose_set(sets, target)
    else:
        named = [s for s in sets if s.get("id") == set_id and "error" not in s]
        if not named:
            raise NoBackup(f"backup set {set_id} does not exist (or its manifest is bad)")
        chosen = named[0]
    p = Plan(chosen)
    pos = int(chosen["lsn"])
    for _ in range(len(segments) + 1):
        if target.lsn is not None and pos >= target.lsn:
            break
        nxt = [s for s in segments if s.first_lsn <= pos + 1 <= s.last_lsn]
        if not nxt:
            later = [s for s in segments if s.first_lsn > pos + 1]
            p.after_gap = min(later) if later else None
            break
        seg = max(nxt, key=lambda s: (s.epoch, s.last_lsn))
        p.segments.append(seg)
        pos = seg.last_lsn
    return p
