"""Failover with real site processes: kill -9 under load (sync and async), promotion,
rejoin of the old primary with quarantine, and `standby reconcile`."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from standby.cli import app as cli_app
from tests.support.replication import (
    WorkloadSite,
    caught_up,
    rep_headers,
    rows_by_id,
    secret_of,
    snapshot,
    status,
    tenant_op,
    user_op,
    wait_for,
    write,
    write_pair,
)

pytestmark = pytest.mark.slow


class Workload:
    """Writers that log every write the primary acknowledged (HTTP 200), with its LSN."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.acked: list[tuple[str, int]] = []
        self.refused = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, n: int) -> None:
        with httpx.Client(timeout=10.0) as client:
            for i in range(100_000):
                if self._stop.is_set():
                    return
                uid = f"w{n}-{i}"
                try:
                    resp = client.post(f"{self.url}/_workload/write", json={"ops": [user_op(uid)]})
                except httpx.HTTPError:
                    return  # the primary is gone
                with self._lock:
                    if resp.status_code == 200:
                        self.acked.append((uid, resp.json()["lsn"]))
                    else:
                        self.refused += 1

    def __enter__(self) -> Workload:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)


def _user_ids(url: str, site: str) -> set[str]:
    return {row[0] for row in snapshot(url, site)["users"]}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_kill_9_under_load_loses_no_acknowledged_write_in_sync_mode(
    tmp_path: Path, store_url_pair: list[str], mode: str
) -> None:
    pc, sc = write_pair(tmp_path, store_url_pair, replication={"mode": mode, "sync_timeout": 5.0})
    secret = secret_of(pc)
    primary = WorkloadSite(pc).start()
    standby = WorkloadSite(sc).start()
    samples: list[dict[str, Any]] = []
    try:
        assert write(primary.url, [tenant_op("t1")]).status_code == 200
        wait_for(lambda: status(primary.url, secret)["standbys"].get("site-b"))
        with Workload(primary.url) as load:
            wait_for(lambda: len(load.acked) >= 80, timeout=60)
            for _ in range(5):  # the primary's own reports of the standby's position
                samples.append(status(primary.url, secret))
                time.sleep(0.02)
            primary.kill()
        assert load.acked, "the workload wrote nothing"
        # what the standby has is final: nothing more can arrive from a dead primary
        wait_for(lambda: not status(standby.url, secret)["connected"])
        have = _user_ids(store_url_pair[1], "site-b")
        missing = [(uid, lsn) for uid, lsn in load.acked if uid not in have]
        if mode == "sync":
            assert missing == []
        else:
            # async: whatever is missing was beyond what the standby had confirmed at the
            # primary's last report, i.e. inside the lag it reported
            last_acked = samples[-1]["standbys"]["site-b"]["acked_lsn"]
            assert all(lsn > last_acked for _, lsn in missing), (missing[:5], last_acked)
        # the standby takes over with everything it has
        resp = httpx.post(
            f"{standby.url}/replication/promote",
            json={"epoch": 2, "reason": "primary killed"},
            headers=rep_headers(secret),
        )
        assert resp.status_code == 200 and resp.json()["epoch"] == 2
        after = write(standby.url, [user_op("after-failover")])
        assert after.status_code == 200 and after.headers["Standby-Epoch"] == "2"
    finally:
        primary.kill()
        standby.stop()


def _cli(config: Path, *args: str) -> Result:
    """The `standby` command, in this process (the same code path, no interpreter start)."""
    return CliRunner().invoke(cli_app, [*args, "--config", str(config)])


def _reconcile(config: Path, *args: str) -> Result:
    return _cli(config, "reconcile", *args)


def test_rejoin_quarantines_old_primary_only_writes_and_reconcile_reapplies_them(
    tmp_path: Path, store_url_pair: list[str]
) -> None:
    pc, sc = write_pair(tmp_path, store_url_pair)
    secret = secret_of(pc)
    a, b = WorkloadSite(pc).start(), WorkloadSite(sc).start()
    try:
        session = {
            "tenant": "t1",
            "user_id": "alice",
            "created_at": 1,
            "last_seen": 1,
            "expires_at": 10**15,
            "auth_time": 1,
        }
        base = [
            tenant_op("t1"),
            user_op("alice"),
            {"op": "insert", "entity": "sessions", "row": {"id": "s-live", **session}},
            {"op": "insert", "entity": "sessions", "row": {"id": "s-revoked", **session}},
        ]
        assert write(a.url, base).status_code == 200
        revoke = {"op": "update", "entity": "sessions", "key": "s-revoked"}
        last = write(a.url, [{**revoke, "changes": {"revoked_at": 7}}]).json()["lsn"]
        wait_for(lambda: caught_up(b.url, secret, last))
        b.stop()  # the link breaks: what A writes now never reaches B
        only_a = [
            [user_op("carol")],
            [{"op": "update", "entity": "users", "key": "alice", "changes": {"email": "a@x"}}],
            [{"op": "insert", "entity": "sessions", "row": {"id": "s-only-a", **session}}],
        ]
        for ops in only_a:
            assert write(a.url, ops).status_code == 200
        a.kill()
        b.start()
        resp = httpx.post(
            f"{b.url}/replication/promote",
            json={"epoch": 2, "reason": "site-a lost"},
            headers=rep_headers(secret),
        )
        assert resp.status_code == 200, resp.text
        start_lsn = resp.json()["start_lsn"]
        upd = {"op": "update", "entity": "users", "key": "alice"}
        assert write(b.url, [user_op("dave"), {**upd, "changes": {"display_name": "Al"}}])
        a.start()  # comes back believing it is still the primary on epoch 1
        resp = httpx.post(
            f"{a.url}/replication/follow",
            json={"primary_url": b.url, "epoch": 2},
            headers=rep_headers(secret),
        )
        assert resp.status_code == 200, resp.text
        report = resp.json()["quarantine"]
        assert report["divergence_lsn"] == start_lsn and report["records"] == 3
        assert set(report["by_entity"]) == {"users", "sessions"}
        cli = _cli(pc, "replication", "status", "--json")
        assert cli.exit_code == 0, cli.output
        mine = json.loads(cli.stdout)
        assert (mine["role"], mine["epoch"], mine["primary_url"]) == ("standby", 2, b.url)
        # the new primary's history reached the old one
        assert [(t["epoch"], t["site"]) for t in mine["timeline"]] == [
            (1, "site-a"),
            (2, "site-b"),
        ]
        head_b = status(b.url, secret)["head_lsn"]
        wait_for(lambda: caught_up(a.url, secret, head_b))
        assert snapshot(store_url_pair[0], "site-a") == snapshot(store_url_pair[1], "site-b")
        # a write sent to the old primary is done by the new one (forwarded), never by it
        forwarded = write(a.url, [user_op("via-a")])
        assert forwarded.status_code == 200, forwarded.text
        assert forwarded.headers["standby-site"] == "site-b"
        assert forwarded.headers["standby-forwarded-by"] == "site-a"
        assert "via-a" in rows_by_id(store_url_pair[1], "site-b", "users")
        # sessions and revocations survived the failover
        sessions = rows_by_id(store_url_pair[1], "site-b", "sessions")
        assert sessions["s-live"]["revoked_at"] is None
        assert sessions["s-revoked"]["revoked_at"] == 7
        assert "s-only-a" not in sessions
        listed = _reconcile(pc, "list", "--json")
        assert listed.exit_code == 0, listed.stderr
        entries = json.loads(listed.stdout)
        assert [(e["entity"], e["key"], e["status"]) for e in entries] == [
            ("users", "carol", "pending"),
            ("users", "alice", "pending"),
            ("sessions", "s-only-a", "pending"),
        ]
        carol = entries[0]["id"]
        applied = _reconcile(pc, "apply", str(carol), "--json")
        assert applied.exit_code == 0, applied.stderr
        new_lsn = json.loads(applied.stdout)["lsns"][0]
        assert new_lsn > head_b
        dismissed = _reconcile(pc, "dismiss", str(entries[2]["id"]))
        assert dismissed.exit_code == 0, dismissed.stderr
        again = _reconcile(pc, "apply", str(carol))
        assert again.exit_code != 0 and "already resolved" in again.stderr
        wait_for(lambda: caught_up(a.url, secret, new_lsn))
        assert "carol" in _user_ids(store_url_pair[1], "site-b") and "carol" in _user_ids(
            store_url_pair[0], "site-a"
        )
        statuses = [e["status"] for e in json.loads(_reconcile(pc, "list", "--json").stdout)]
        assert statuses == ["reapplied", "pending", "dismissed"]
    finally:
        a.stop()
        b.stop()
