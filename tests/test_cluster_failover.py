"""Real failovers: two `standby serve` processes and a `standby controller` on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from standby.cluster.dcs import Leader
from standby.cluster.dcs.etcd import EtcdDcs
from tests.support.cluster import Cluster, make_cluster
from tests.support.etcd import EtcdServer

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = make_cluster(tmp_path, lease_ttl=1.0)  # the production default timing
    try:
        yield c
    finally:
        c.stop()


def approve(c: Cluster) -> subprocess.CompletedProcess[str]:
    """`standby failover --approve`, as an operator types it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "standby.cli",
            "failover",
            "--approve",
            "--topology",
            str(c.topology),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )


def kinds(c: Cluster) -> list[str]:
    return [e["kind"] for e in c.events()]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_primary_promotes_standby_with_next_epoch(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    stores = None
    if backend == "postgres":
        pg = request.getfixturevalue("postgres")
        stores = {"site-a": pg.url(pg.create_database()), "site-b": pg.url(pg.create_database())}
    c = make_cluster(tmp_path, store_urls=stores)
    try:
        c.start()
        c.wait_writable("site-a")
        for i in range(20):
            assert c.write("site-a", f"before-{i}").status_code == 201
        c.wait_for(
            "standby caught up",
            lambda: (
                (c.site_status("site-b") or {}).get("applied_lsn")
                == (c.site_status("site-a") or {}).get("head_lsn")
            ),
        )
        c.sites["site-a"].kill()
        c.wait_role("site-b", "primary", 2)
        c.wait_writable("site-b")
        status = c.status()
        assert (status["primary"], status["epoch"]) == ("site-b", 2)
        seen = kinds(c)
        order = [
            seen.index(k)
            for k in ("site_down", "failover_started", "prepared", "epoch_bumped", "promoted")
        ]
        assert order == sorted(order), seen
        # Everything written before the kill is on the new primary.
        for i in range(20):
            r = c.write("site-b", f"before-{i}")
            assert r.status_code == 409, r.text  # exists already
        # The old primary comes back: fenced, rewound if needed, following site-b.
        c.start_site("site-a")
        c.wait_role("site-a", "standby", 2)
        assert "rejoined" in kinds(c)
        r = c.write("site-a", "to-old-primary")  # done by the new primary, not by site-a
        assert r.status_code == 201 and r.headers["standby-site"] == "site-b", r.text
        assert r.headers["standby-forwarded-by"] == "site-a"
    finally:
        c.stop()


def test_one_second_stall_of_a_healthy_primary_causes_no_failover(cluster: Cluster) -> None:
    c = cluster.start()
    c.wait_writable("site-a")
    proc = c.sites["site-a"].proc
    assert proc is not None
    os.killpg(proc.pid, signal.SIGSTOP)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGCONT)
    c.wait_writable("site-a", timeout=5)
    time.sleep(1.5)  # give a wrong decision every chance to show itself
    status = c.status()
    assert (status["primary"], status["epoch"]) == ("site-a", 1)
    seen = kinds(c)
    assert "failover_started" not in seen and "promoted" not in seen, seen
    assert (c.site_status("site-b") or {}).get("role") == "standby"
    c.wait_writable("site-a", timeout=5)


def test_approval_mode_waits_for_the_operator(tmp_path: Path) -> None:
    """Also the controller on a real etcd: the epoch moves by compare-and-swap there."""
    etcd = EtcdServer().start()
    dcs = {"backend": "etcd", "endpoints": [etcd.url], "prefix": "/approval"}
    c = make_cluster(tmp_path, mode="approval", controller={"dcs": dcs})
    try:
        c.start()
        c.wait_writable("site-a")
        c.sites["site-a"].kill()
        c.wait_for("awaiting approval", lambda: c.status()["awaiting_approval"] == "site-b")
        time.sleep(1.5)  # well past the lease: still nothing happens without a person
        assert (c.site_status("site-b") or {})["role"] == "standby"
        assert c.status()["epoch"] == 1
        out = approve(c)
        assert out.returncode == 0, out.stderr
        c.wait_role("site-b", "primary", 2)
        seen = kinds(c)
        assert (
            seen.index("awaiting_approval")
            < seen.index("failover_approved")
            < seen.index("promoted")
        )
        # Nothing is pending now: a second approval is refused with a clear message.
        again = approve(c)
        assert again.returncode != 0
        assert "no failover is awaiting approval" in " ".join(again.stderr.split())
        leader = EtcdDcs([etcd.url], "/approval")
        got = asyncio.run(_leader(leader))
        assert got is not None and (got.primary, got.epoch) == ("site-b", 2)
    finally:
        c.stop()
        etcd.stop()


async def _leader(dcs: EtcdDcs) -> Leader | None:
    try:
        return await dcs.get_leader()
    finally:
        await dcs.close()
