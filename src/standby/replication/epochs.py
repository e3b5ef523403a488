"""Pure epoch decisions: who is stale, and where a timeline forked from ours."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

Verdict = Literal["same", "caller_higher", "caller_lower"]


def compare(ours: int, caller: int) -> Verdict:
    if caller > ours:
        return "caller_higher"
    if caller < ours:
        return "caller_lower"
    return "same"


def divergence_lsn(own_epoch: int, primary_timeline: Iterable[Mapping[str, Any]]) -> int | None:
    """The first LSN that is not on the primary's timeline, from our point of view.

    Our records are all on epochs <= ``own_epoch``. The first epoch of the primary's
    history above ours started at some LSN S: the primary's records from S on are on a
    timeline we never saw, so anything we hold at S or later diverged. None: the
    primary's history has no epoch above ours (same timeline, nothing diverged).
    """
    later = [dict(r) for r in primary_timeline if int(r["epoch"]) > own_epoch]
    if not later:
        return None
    return int(min(later, key=lambda r: int(r["epoch"]))["start_lsn"])


def newest_epoch(timeline: Iterable[Mapping[str, Any]]) -> int:
    return max((int(r["epoch"]) for r in timeline), default=0)
