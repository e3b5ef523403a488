"""What /replication/status, /metrics and `standby replication status` report."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from standby.replication.client import primary_url
from standby.replication.fencing import fenced_reason
from standby.replication.lag import Lag, primary_view, standby_view, unacked
from standby.replication.state import state_of
from standby.server import Site
from standby.store import now_us

log = logging.getLogger("standby.replication.status")


def peer_lags(site: Site) -> dict[str, tuple[dict[str, Any], Lag]]:
    """Each standby the primary has heard from, with its lag as seen from here."""
    state = state_of(site)
    head = site.store.head().lsn
    out: dict[str, tuple[dict[str, Any], Lag]] = {}
    for name, peer in list(state.peers.items()):
        pending, oldest = (0, None)
        if head > peer.lsn:
            pending, oldest = unacked(site.store, peer.lsn, peer.tenants)
        lag = primary_view(head, peer.lsn, pending, oldest, now_us())
        out[name] = (
            {
                "acked_lsn": peer.lsn,
                "epoch": peer.epoch,
                "acked_at": peer.acked_at,
                "connected": peer.connected,
                "tenants": peer.tenants,
                "lag": lag.to_dict(),
            },
            lag,
        )
    return out


def own_lag(site: Site) -> Lag:
    f = state_of(site).follower
    silent = time.monotonic() - f.last_contact if f.last_contact else 0.0
    return standby_view(
        f.primary_head_lsn,
        f.position,
        f.primary_head_committed_at,
        f.applied_committed_at,
        f.pending_bytes,
        f.connected,
        silent,
    )


def report(site: Site) -> dict[str, Any]:
    state = state_of(site)
    gate = state.gate
    head = site.store.head()
    standbys = peer_lags(site) if site.role == "primary" else {}
    if site.role == "primary":
        best = max(standbys.values(), key=lambda p: int(p[0]["acked_lsn"]), default=None)
        lag = best[1].to_dict() if best else None
    else:
        lag = own_lag(site).to_dict()
    f = state.follower
    return {
        "site": site.name,
        "role": site.role,
        "epoch": site.epoch,
        "head_lsn": head.lsn,
        "head_hash": head.hash,
        "head_committed_at": head.committed_at,
        "applied_lsn": head.lsn,  # the log is the position: its head is what was applied
        "position": f.position if site.role == "standby" else head.lsn,
        "primary_url": primary_url(site) if site.role == "standby" else None,
        "connected": f.connected if site.role == "standby" else None,
        "last_error": f.last_error if site.role == "standby" else None,
        "primary_head_lsn": f.primary_head_lsn if site.role == "standby" else head.lsn,
        "mode": site.settings.replication.mode,
        "strict": site.settings.replication.strict,
        "degraded": bool(gate and gate.degraded),
        "writes_blocked": bool(gate and gate.blocked),
        "lag": lag,
        "standbys": {k: v[0] for k, v in standbys.items()},
        "fenced": fenced_reason(site),
        "tenants": site.settings.replication.tenants,
        "timeline": site.store.timeline(),
        "public_url": site.settings.http.public_url,
        "issuer_base": site.settings.base_url(),
        "primary_issuer_base": f.primary_issuer_base if site.role == "standby" else None,
    }


class ReplicationCollector(Collector):
    """Scrape-time gauges: lag on both sides, degraded, fenced, position."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def collect(self) -> Iterator[GaugeMetricFamily]:
        site = self.site
        names = ("records", "bytes", "seconds")
        fams = {
            n: GaugeMetricFamily(
                f"standby_replication_lag_{n}",
                f"Replication lag in {n} (side: who measures; peer: the other site)",
                labels=["side", "peer"],
            )
            for n in names
        }
        try:
            if site.role == "primary":
                for peer, (_, lag) in peer_lags(site).items():
                    for n in names:
                        fams[n].add_metric(["primary", peer], float(getattr(lag, n)))
            else:
                lag = own_lag(site)
                for n in names:
                    fams[n].add_metric(["standby", "primary"], float(getattr(lag, n)))
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail when the store is down
            log.debug("lag unavailable: %s", exc)
        yield from fams.values()
        gate = state_of(site).gate
        yield GaugeMetricFamily(
            "standby_replication_degraded",
            "1 while synchronous replication has degraded to async",
            value=float(bool(gate and gate.degraded)),
        )
        yield GaugeMetricFamily(
            "standby_replication_writes_blocked",
            "1 while strict sync replication refuses writes for want of a standby",
            value=float(bool(gate and gate.blocked)),
        )
        yield GaugeMetricFamily(
            "standby_replication_fenced",
            "1 while this site is fenced (refuses writes after seeing a newer epoch)",
            value=float(bool(fenced_reason(site))),
        )
        f = state_of(site).follower
        yield GaugeMetricFamily(
            "standby_replication_applied_records",
            "Records this standby applied since it started",
            value=float(f.applied_records),
        )
        yield GaugeMetricFamily(
            "standby_replication_rejected_batches",
            "Batches this standby refused (unreadable or not fitting its log)",
            value=float(f.rejected_batches),
        )
