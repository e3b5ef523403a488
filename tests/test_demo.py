"""`standby demo` end to end: real sites, controller and router; kill -9, failover,
rejoin, gradual failback; measured figures; nothing left running."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from standby.drills.processes import pid_alive

pytestmark = pytest.mark.slow


def test_demo_runs_a_real_failover_and_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "standby.cli", "demo", "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert json.loads(proc.stdout)["completed"] is True
    assert report["completed"] is True
    measured = report["measured"]
    assert isinstance(measured["rto_s"], float) and measured["rto_s"] > 0
    rpo = measured["rpo"]
    assert isinstance(rpo["lost"], int) and 0 <= rpo["lost"] <= rpo["acknowledged_writes"]
    assert isinstance(rpo["window_s"], float) and rpo["window_s"] >= 0
    assert measured["dual_primaries"] == []
    # the controller moved the role and the workload saw the new primary acknowledge writes
    sites = {row["site"] for row in measured["acknowledged_by"]}
    assert sites == {"site-a", "site-b"}
    # its users signed in through the code flow (first-party demo app: no consent page)
    assert report["workload"]["token_requests"].startswith("OIDC refresh_token grant")
    kinds = [e["kind"] for e in report["timeline"]]
    for kind in ("fault_kill9", "promoted", "old_primary_rejoined", "failback_done"):
        assert kind in kinds, kind
    assert report["failback"]["lost_writes"] == 0
    # one issuer, the router's URL, in discovery before the fault and after both moves
    router = yaml.safe_load((Path(report["run_dir"]) / "topology.yaml").read_text())
    public_url = router["traffic"]["listen"]
    issuer = report["issuer"]
    assert issuer["public_url"] == public_url and issuer["same"] is True
    for when in ("before_failover", "after_failover", "after_failback"):
        assert issuer[when] == f"{public_url}/t/demo", when
    phases = report["phases"]
    assert 0 <= phases["detected_s"] <= phases["promoted_s"] <= measured["rto_s"]
    # every process it started is gone
    pids = [p for group in report["processes"].values() for p in group]
    assert len(pids) >= 5  # two sites, the restarted old primary, controller, router
    assert report["left_running"] == []
    assert not [p for p in pids if pid_alive(p)]
    assert (out / "report.html").read_text().count("<tr>") > 5
    history = (out / "drill-history.jsonl").read_text().splitlines()
    assert len(history) == 1 and json.loads(history[0])["issuer"] == f"{public_url}/t/demo"


def test_interrupted_demo_stops_what_it_started(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) mid-run: the demo stops every process it started (SIGTERM takes
    the same path)."""
    out = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "standby.cli", "demo", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("run-*/logs/router.log")):  # the last process it starts
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert b"interrupted" in err and b"Traceback" not in err
    report = json.loads((out / "report.json").read_text())
    pids = [p for group in report["processes"].values() for p in group]
    assert pids and report["left_running"] == []
    assert not [p for p in pids if pid_alive(p)]
