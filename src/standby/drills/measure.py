"""Pure drill measurements from the acknowledgement log and the new primary's data."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection
from typing import Any

from standby.drills.acks import Ack


def rto(acks: list[Ack], fault_mono: float) -> float | None:
    """Seconds from the fault to the first successful login sent after it (None: none)."""
    done = [a.recv_mono for a in acks if a.op == "login" and a.ok and a.send_mono >= fault_mono]
    return min(done) - fault_mono if done else None


def first_ok_after(acks: list[Ack], op: str, fault_mono: float) -> float | None:
    done = [a.recv_mono for a in acks if a.op == op and a.ok and a.send_mono >= fault_mono]
    return min(done) - fault_mono if done else None


def rpo(acks: list[Ack], present: Collection[str], fault_mono: float) -> dict[str, Any]:
    """Acknowledged writes missing from the new primary: count, keys and their time window.

    The window is from the earliest send to the latest acknowledgement of the lost writes,
    reported relative to the fault (negative: before it)."""
    acked = [a for a in acks if a.op == "write" and a.ok]
    lost = sorted((a for a in acked if a.key not in present), key=lambda a: a.send_mono)
    out: dict[str, Any] = {
        "acknowledged_writes": len(acked),
        "lost": len(lost),
        "lost_keys": [a.key for a in lost][:100],
        "window_s": 0.0,
        "window_from_fault_s": None,
    }
    if lost:
        start = lost[0].send_mono
        end = max(a.recv_mono for a in lost)
        out["window_s"] = end - start
        out["window_from_fault_s"] = [start - fault_mono, end - fault_mono]
    return out


def errors_by_kind(acks: list[Ack]) -> dict[str, dict[str, int]]:
    """Failed requests grouped by operation and error kind."""
    out: dict[str, Counter[str]] = {}
    for a in acks:
        if not a.ok:
            out.setdefault(a.op, Counter())[a.error or "unknown"] += 1
    return {op: dict(sorted(c.items())) for op, c in sorted(out.items())}


def _spans(acks: list[Ack]) -> dict[tuple[str, int], tuple[float, float, float, float]]:
    """Per (site, epoch) that acknowledged writes: (min send, max send, min recv, max recv)."""
    spans: dict[tuple[str, int], tuple[float, float, float, float]] = {}
    for a in acks:
        if a.op != "write" or not a.ok or a.site is None or a.epoch is None:
            continue
        key = (a.site, a.epoch)
        if key not in spans:
            spans[key] = (a.send_mono, a.send_mono, a.recv_mono, a.recv_mono)
        else:
            s0, s1, r0, r1 = spans[key]
            spans[key] = (
                min(s0, a.send_mono),
                max(s1, a.send_mono),
                min(r0, a.recv_mono),
                max(r1, a.recv_mono),
            )
    return spans


def dual_primaries(acks: list[Ack]) -> list[dict[str, Any]]:
    """Pairs of (site, epoch) that provably acknowledged writes over overlapping periods.

    Two different sites on the same epoch is always a conflict. For epochs e1 < e2, the
    older one is in conflict if it acknowledged a write that was sent after the newer one
    had already acknowledged one (send of the old's last write > first ack of the new)."""
    spans = _spans(acks)
    conflicts = []
    keys = sorted(spans, key=lambda k: (k[1], k[0]))
    for i, old in enumerate(keys):
        for new in keys[i + 1 :]:
            if old[0] == new[0]:
                continue
            same_epoch = old[1] == new[1]
            old_last_send = spans[old][1]
            new_first_ack = spans[new][2]
            if same_epoch or old_last_send > new_first_ack:
                conflicts.append(
                    {
                        "a": {"site": old[0], "epoch": old[1]},
                        "b": {"site": new[0], "epoch": new[1]},
                        "same_epoch": same_epoch,
                        "overlap_s": max(0.0, old_last_send - new_first_ack),
                    }
                )
    return conflicts


def acknowledgers(acks: list[Ack]) -> list[dict[str, Any]]:
    """Who acknowledged writes, in order of first acknowledgement."""
    spans = _spans(acks)
    counts = Counter((a.site, a.epoch) for a in acks if a.op == "write" and a.ok and a.site)
    rows = [
        {"site": k[0], "epoch": k[1], "writes": counts[k], "first_ack": v[2], "last_ack": v[3]}
        for k, v in spans.items()
    ]
    return sorted(rows, key=lambda r: r["first_ack"])


def percentile(values: list[float], pct: float) -> float | None:
    """The nearest-rank percentile (``pct`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_phases(
    acks: list[Ack], fault_mono: float, rto_s: float | None
) -> dict[str, dict[str, Any]]:
    """Latency (seconds) of the requests sent before the fault, during the outage (from
    the fault to the first successful login after it) and after, failed ones included."""
    end = fault_mono + (rto_s if rto_s is not None else math.inf)
    groups: dict[str, list[float]] = {"before": [], "during": [], "after": []}
    for a in acks:
        phase = "before" if a.send_mono < fault_mono else "during" if a.send_mono < end else "after"
        groups[phase].append(a.recv_mono - a.send_mono)
    return {
        phase: {
            "requests": len(values),
            "p50_s": percentile(values, 50),
            "p99_s": percentile(values, 99),
            "max_s": max(values, default=None),
        }
        for phase, values in groups.items()
    }


def summarize(acks: list[Ack], present: Collection[str], fault_mono: float) -> dict[str, Any]:
    """Everything a drill report states about the clients' view of the fault."""
    ok = sum(a.ok for a in acks)
    return {
        "requests": len(acks),
        "ok": ok,
        "failed": len(acks) - ok,
        "rto_s": (rto_s := rto(acks, fault_mono)),
        "first_write_after_fault_s": first_ok_after(acks, "write", fault_mono),
        "first_token_after_fault_s": first_ok_after(acks, "token", fault_mono),
        "rpo": rpo(acks, present, fault_mono),
        "errors": errors_by_kind(acks),
        "acknowledged_by": acknowledgers(acks),
        "dual_primaries": dual_primaries(acks),
        "latency": latency_phases(acks, fault_mono, rto_s),
    }
