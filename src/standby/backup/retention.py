"""Retention (pure): which sets and segments may go, by count and by age, never touching
what the newest restorable chain needs.

Kept: the newest ``keep_count`` sets; with ``keep_days``, every set taken inside the
window plus the newest one before it (needed to restore to the window's start); the
newest set that passed verification. Segments go only when they end at or before the
oldest kept set — every kept set keeps its full chain of segments after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SetInfo:
    id: str
    created_at: float
    lsn: int
    verified_ok: bool | None = None


@dataclass(frozen=True)
class SegmentInfo:
    name: str
    first_lsn: int
    last_lsn: int


@dataclass(frozen=True)
class Decision:
    keep_sets: list[str]
    delete_sets: list[str]
    delete_segments: list[str]
    reasons: dict[str, str] = field(default_factory=dict)


def decide(
    sets: Sequence[SetInfo],
    segments: Sequence[SegmentInfo],
    *,
    now: float,
    keep_count: int,
    keep_days: float | None = None,
) -> Decision:
    if keep_count < 1:
        raise ValueError("keep_count must be at least 1")
    if not sets:
        return Decision([], [], [])
    newest_first = sorted(sets, key=lambda s: (s.lsn, s.created_at, s.id), reverse=True)
    reasons: dict[str, str] = {}
    for s in newest_first[:keep_count]:
        reasons[s.id] = f"among the newest {keep_count}"
    if keep_days is not None:
        start = now - keep_days * 86400
        inside = [s for s in newest_first if s.created_at >= start]
        before = [s for s in newest_first if s.created_at < start]
        for s in inside:
            reasons.setdefault(s.id, f"inside the {keep_days:g}-day window")
        if before:
            reasons.setdefault(before[0].id, "needed to restore to the window's start")
    verified = [s for s in newest_first if s.verified_ok]
    if verified:
        reasons.setdefault(verified[0].id, "newest verified set")
    keep = [s for s in newest_first if s.id in reasons]
    oldest_kept = min(s.lsn for s in keep)
    return Decision(
        keep_sets=[s.id for s in keep],
        delete_sets=[s.id for s in newest_first if s.id not in reasons],
        delete_segments=sorted(g.name for g in segments if g.last_lsn <= oldest_kept),
        reasons=reasons,
    )
