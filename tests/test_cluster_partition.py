"""Partition between the primary and the controller: the isolated primary stops
acknowledging writes before the standby is promoted — checked from the workload's
acknowledgement log and from the commit times both stores recorded."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from standby.settings import load_settings
from tests.support.cluster import make_cluster
from tests.support.postgres import free_port
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.slow


@dataclass
class Ack:
    target: str
    key: str
    status: int
    site: str | None
    epoch: int | None
    sent: float  # wall clock
    received: float


def workload(urls: dict[str, str], token: str, stop: threading.Event, log: list[Ack]) -> None:
    """Writes to both sites in turn, recording every answer; bounded in count and time."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=1.0) as client:
        for n in range(100_000):
            if stop.is_set() or time.monotonic() > deadline:
                return
            for name, url in urls.items():
                key = f"w-{name}-{n}"
                sent = time.time()
                try:
                    r = client.post(
                        f"{url}/admin/tenants", json={"id": key, "name": key}, headers=headers
                    )
                except httpx.HTTPError:
                    continue
                epoch = r.headers.get("Standby-Epoch")
                log.append(
                    Ack(
                        name,
                        key,
                        r.status_code,
                        r.headers.get("Standby-Site"),
                        int(epoch) if epoch else None,
                        sent,
                        time.time(),
                    )
                )
            time.sleep(0.01)


def commit_times(db: str, epoch: int) -> list[int]:
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        rows = conn.execute("SELECT committed_at FROM change_log WHERE epoch = ?", (epoch,))
        return [r[0] for r in rows]


def test_isolated_primary_stops_before_the_standby_is_promoted(tmp_path: Path) -> None:
    pa, pc = free_port(), free_port()
    to_primary = TcpProxy(pa).start()  # controller -> site-a
    to_controller = TcpProxy(pc).start()  # site-a -> controller
    c = make_cluster(
        tmp_path,
        ports={"site-a": pa, "controller": pc},
        ctl_to_primary=to_primary.url,
        primary_to_ctl=to_controller.url,
    )
    stop = threading.Event()
    log: list[Ack] = []
    worker = threading.Thread(target=workload, args=(c.urls, c.admin_token, stop, log))
    try:
        c.start()
        c.wait_writable("site-a")
        c.wait_for(
            "controller sees both sites", lambda: all(s.get("ready") for s in c.status()["sites"])
        )
        worker.start()
        time.sleep(0.5)
        to_primary.cut()
        to_controller.cut()
        c.wait_role("site-b", "primary", 2)
        c.wait_for(
            "the new primary to acknowledge writes",
            lambda: sum(a.status == 201 and a.site == "site-b" for a in list(log)) >= 3,
            timeout=15,
        )
        stop.set()
        worker.join(10)
        a_acks = [a for a in log if a.status == 201 and a.site == "site-a"]
        b_acks = [a for a in log if a.status == 201 and a.site == "site-b"]
        assert a_acks and b_acks, "the workload saw both primaries acknowledge writes"
        assert {a.epoch for a in a_acks} == {1} and {b.epoch for b in b_acks} == {2}
        refused = [
            a
            for a in log
            if a.target == "site-a" and a.status == 503 and a.sent > a_acks[-1].received
        ]
        assert refused, "the isolated primary refused writes after its lease lapsed"
        # No write went to site-a after site-b had acknowledged one (client's view) ...
        assert max(a.sent for a in a_acks) < min(b.received for b in b_acks)
        # ... and, from the stores' own commit times (same machine clock), every write
        # the old primary committed precedes the promotion and every new-primary write.
        events = c.events()
        bumped = next(e["at"] for e in events if e["kind"] == "epoch_bumped")
        url_a = load_settings(c.configs["site-a"], env={}).store.url
        url_b = load_settings(c.configs["site-b"], env={}).store.url
        last_old = max(commit_times(url_a, 1))
        first_new = min(commit_times(url_b, 2))
        assert last_old < bumped * 1e6 < first_new
        kinds = [e["kind"] for e in events]
        assert kinds.index("failover_started") < kinds.index("prepared") < kinds.index("promoted")
        # The partition heals: the old primary is fenced and follows the new one.
        to_primary.restore()
        to_controller.restore()
        c.wait_role("site-a", "standby", 2)
    finally:
        stop.set()
        c.stop()
        to_primary.stop()
        to_controller.stop()
