"""Planned switchover loses nothing; failback ramps the router's weights with health
gates. Driven through the CLI, with the builtin router in front of the sites."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import Cluster, make_cluster

pytestmark = pytest.mark.slow


def cli(c: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "standby.cli", *args, "--topology", str(c.topology)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def exists_on(c: Cluster, name: str, key: str) -> bool:
    r = httpx.get(f"{c.urls[name]}/admin/tenants/{key}", headers=c.admin(), timeout=5)
    return r.status_code == 200


def test_switchover_then_failback_with_ramp(tmp_path: Path) -> None:
    c = make_cluster(tmp_path, controller={"ramp_step_seconds": 0.3})
    try:
        c.start(router=True)
        c.wait_writable("site-a")
        keys = [f"before-{i}" for i in range(30)]
        for k in keys:
            assert c.write("site-a", k).status_code == 201
        out = cli(c, "switchover", "--to", "site-b", "--json")
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert (result["primary"], result["epoch"]) == ("site-b", 2)
        c.wait_role("site-b", "primary", 2)
        c.wait_writable("site-b")
        # Zero loss: every write acknowledged before the switchover is on the new primary.
        assert all(exists_on(c, "site-b", k) for k in keys)
        c.wait_role("site-a", "standby", 2)
        # The old primary takes no write itself: it forwards it to the new primary.
        r = c.write("site-a", "to-old")
        assert r.status_code == 201 and r.headers["standby-site"] == "site-b", r.text
        assert r.headers["standby-forwarded-by"] == "site-a"
        more = [f"after-{i}" for i in range(10)]
        for k in more:
            assert c.write("site-b", k).status_code == 201
        # Switching to the primary itself is refused with a reason, nothing changes.
        bad = cli(c, "switchover", "--to", "site-b")
        assert bad.returncode != 0 and "already the primary" in " ".join(bad.stderr.split())
        out = cli(c, "failback", "--to", "site-a", "--json")
        assert out.returncode == 0, out.stderr
        back = json.loads(out.stdout)
        assert (back["primary"], back["epoch"]) == ("site-a", 3)
        assert back["ramp"]["state"] == "done"
        c.wait_writable("site-a")
        assert all(exists_on(c, "site-a", k) for k in keys + more)
        steps = [e["percent"] for e in c.events() if e["kind"] == "ramp_step"]
        assert steps == [10, 25, 50, 100]
        weights = httpx.get(f"{c.router_url}/_router/weights", headers=c.admin(), timeout=5)
        assert weights.json() == {"site-a": 100, "site-b": 0}
        status = cli(c, "status", "--json")
        assert status.returncode == 0, status.stderr
        data = json.loads(status.stdout)
        assert (data["primary"], data["epoch"], data["traffic"]) == (
            "site-a",
            3,
            {"site-a": 100, "site-b": 0},
        )
        human = cli(c, "status")
        assert human.returncode == 0 and "site-a" in human.stdout
        events = cli(c, "events")
        assert events.returncode == 0 and "switchover_done" in events.stdout
    finally:
        c.stop()


def test_bad_topology_is_a_clear_error(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "standby.cli", "status", "--topology", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "topology file not found" in " ".join(out.stderr.split())
    assert "Traceback" not in out.stderr


def test_orders_that_cannot_succeed_answer_at_once_and_record_nothing(tmp_path: Path) -> None:
    """`failback` to the site that is already primary is refused before any waiting (it
    used to wait for a catch-up that never comes, then time out); a second controller on
    the same address fails to bind, says so in one line naming controller.url, and adds
    nothing to the events file (which is where the README says: beside dcs.path)."""
    c = make_cluster(tmp_path)
    try:
        c.start()
        c.wait_writable("site-a")
        before = [e["seq"] for e in c.events()]
        for target, why in (("site-a", "already the primary"), ("site-z", "unknown site")):
            out = cli(c, "failback", "--to", target)
            assert out.returncode != 0 and why in " ".join(out.stderr.split()), out.stderr
        assert not [e for e in c.events() if e["kind"].startswith("failback")]
        second = cli(c, "controller")
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert second.returncode != 0 and len(lines) == 1, second.stderr
        assert "in use" in lines[0] and "controller.url" in lines[0], lines
        # README: events go to dcs.path with its suffix replaced (controller.db here).
        written = (tmp_path / "controller.events.jsonl").read_text().splitlines()
        seqs = [json.loads(line)["seq"] for line in written]
        assert len(seqs) == len(set(seqs)), "duplicate event numbers"
        kinds = [json.loads(line)["kind"] for line in written]
        assert kinds.count("controller_started") == 1, kinds
        assert [e["seq"] for e in c.events()][: len(before)] == before
    finally:
        c.stop()
