"""Synchronous replication: strict refuses, non-strict degrades loudly and recovers."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from standby.replication.sync import SyncGate, standby_attached
from standby.store import NotWritable
from standby.store.records import Record
from tests.support.replication import (
    WorkloadSite,
    rows_by_id,
    secret_of,
    status,
    tenant_op,
    user_op,
    wait_for,
    write,
    write_pair,
)
from tests.support.sites import SiteProcess


def _rec(lsn: int) -> Record:
    return Record(lsn, 1, "a", 1, lsn, None, "tenants", "k", "delete", None, "0", "0")


def test_a_sync_write_returns_once_the_ack_arrives() -> None:
    gate = SyncGate("a", timeout=30.0, strict=True, enabled=True)
    done = threading.Event()

    def writer() -> None:
        gate.commit_hook([_rec(5)])
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    gate.on_ack(4, lambda: 5)
    assert not done.wait(0.2)  # lsn 4 does not confirm lsn 5
    gate.on_ack(5, lambda: 5)
    t.join(10)
    assert done.is_set() and not gate.blocked and not gate.degraded


def test_strict_gate_blocks_until_a_standby_catches_up() -> None:
    gate = SyncGate("a", timeout=0.05, strict=True, enabled=True)
    with pytest.raises(NotWritable, match="not acknowledged"):
        gate.commit_hook([_rec(1)])
    with pytest.raises(NotWritable, match="strict"):
        gate.guard()
    gate.on_ack(1, lambda: 1)
    gate.guard()


def test_no_standby_attached_degrades_at_once() -> None:
    """A just-promoted primary has no standby: a write does not wait the sync timeout."""
    gate = SyncGate("a", timeout=30.0, strict=False, enabled=True, attached=lambda: False)
    done = threading.Event()
    t = threading.Thread(target=lambda: (gate.commit_hook([_rec(1)]), done.set()))
    t.start()
    assert done.wait(5), "the write waited for a standby that is not there"
    t.join()
    assert gate.degraded and gate.timeouts == 1
    strict = SyncGate("a", timeout=30.0, strict=True, enabled=True, attached=lambda: False)
    with pytest.raises(NotWritable, match="not acknowledged") as refused:
        strict.commit_hook([_rec(1)])
    assert refused.value.committed is True  # committed here: a proxy must not resend it
    assert strict.blocked


@pytest.mark.parametrize("strict", [False, True])
def test_every_waiting_write_wakes_when_the_gate_gives_up(strict: bool) -> None:
    """One write's timeout ends the wait of all others at once (degrade, or refuse)."""
    gate = SyncGate("a", timeout=0.3, strict=strict, enabled=True)
    gate.timeout = 30.0  # the ones already waiting would wait 30 s without the wake-up
    outcomes: list[str] = []

    def writer(lsn: int) -> None:
        try:
            gate.commit_hook([_rec(lsn)])
            outcomes.append("ok")
        except NotWritable:
            outcomes.append("refused")

    waiting = [threading.Thread(target=writer, args=(n,)) for n in (2, 3, 4)]
    for t in waiting:
        t.start()
    wait_for(lambda: gate.waits == 3)
    gate.timeout = 0.05
    writer(5)  # times out and gives up for everyone
    for t in waiting:
        t.join(5)
        assert not t.is_alive(), "a waiting write was not woken when the gate gave up"
    assert outcomes == (["refused"] * 4 if strict else ["ok"] * 4)


def test_standby_attached_decision() -> None:
    assert not standby_attached([], 100.0, 2.0)
    assert standby_attached([(True, 0.0)], 100.0, 2.0)  # a live stream
    assert standby_attached([(False, 99.0)], 100.0, 2.0)  # acked a moment ago
    assert not standby_attached([(False, 97.0)], 100.0, 2.0)  # gone longer than the timeout


@pytest.mark.slow
def test_strict_sync_without_a_standby_refuses_then_resumes(
    tmp_path: Path, store_url_pair: list[str]
) -> None:
    pc, sc = write_pair(
        tmp_path, store_url_pair, replication={"mode": "sync", "strict": True, "sync_timeout": 0.3}
    )
    a, b = WorkloadSite(pc).start(), SiteProcess(sc)
    secret = secret_of(pc)
    try:
        # The first write of this site (its own, or ours) commits locally, is not
        # confirmed in time, and is reported unacknowledged (like PostgreSQL's cancelled
        # sync wait); from then on writes are refused before they commit.
        first = write(a.url, [tenant_op("t1")])
        assert first.status_code == 503
        wait_for(lambda: "sync_write_unconfirmed" in a.log_path.read_text())
        if "not acknowledged" in first.json()["message"]:
            assert "t1" in rows_by_id(store_url_pair[0], "site-a", "tenants")
        else:
            assert "strict" in first.json()["message"]
            assert "t1" not in rows_by_id(store_url_pair[0], "site-a", "tenants")
            assert write(a.url, [tenant_op("t1")]).status_code == 503
        blocked = write(a.url, [user_op("u1")])
        assert blocked.status_code == 503 and "strict" in blocked.json()["message"]
        assert "u1" not in rows_by_id(store_url_pair[0], "site-a", "users")
        assert status(a.url, secret)["writes_blocked"] is True
        b.start()
        wait_for(lambda: write(a.url, [user_op("u2")]).status_code == 200)
        assert "u2" in rows_by_id(store_url_pair[1], "site-b", "users")  # applied before the 200
    finally:
        b.stop()
        a.stop()


@pytest.mark.slow
def test_non_strict_sync_degrades_loudly_and_returns_to_sync(
    tmp_path: Path, store_url_pair: list[str]
) -> None:
    pc, sc = write_pair(tmp_path, store_url_pair, replication={"mode": "sync", "sync_timeout": 0.3})
    a, b = WorkloadSite(pc).start(), SiteProcess(sc)
    secret = secret_of(pc)
    try:
        assert write(a.url, [tenant_op("t1")]).status_code == 200
        assert status(a.url, secret)["degraded"] is True
        assert "standby_replication_degraded 1.0" in httpx.get(f"{a.url}/metrics").text
        assert "sync_degraded" in a.log_path.read_text()
        b.start()
        wait_for(lambda: not status(a.url, secret)["degraded"])
        assert write(a.url, [user_op("u1")]).status_code == 200
        assert "u1" in rows_by_id(store_url_pair[1], "site-b", "users")  # sync again
    finally:
        b.stop()
        a.stop()
