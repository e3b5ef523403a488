"""`standby demo`: a primary and a standby on this machine, a controller and the builtin
router or HAProxy; a workload through it, kill -9 of the primary, failover, rejoin,
gradual failback; measured RTO/RPO, client errors and the timeline, printed and written
as JSON + HTML."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from standby.output import console, emit, err_console, table

DRILL = "kill -9 of the primary, automatic failover, rejoin, gradual failback"


LAYERS = {"builtin": "the router", "haproxy": "HAProxy"}


def _run(run_dir: Path, mode: str, traffic: str) -> dict[str, Any]:
    from standby.drills.failover import Drill, DrillError
    from standby.drills.local_cluster import DEMO_PASSWORDS, create_local_cluster
    from standby.drills.processes import ProcessError, ProcessGroup, pid_alive
    from standby.settings import ConfigError

    report: dict[str, Any] = {
        "drill": DRILL,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "completed": False,
        "replication_mode": mode,
        "traffic": traffic,
        "run_dir": str(run_dir),
        "notes": [
            f"demo users hash passwords with fast argon2id parameters {DEMO_PASSWORDS} so the "
            "workload measures failover on 2 cores, not hashing; production defaults are slower",
            f"RTO: from the kill -9 to the first successful login sent through {LAYERS[traffic]} "
            "after it",
            "RPO: writes (user creates) acknowledged to clients but missing on the new primary",
        ],
    }
    group = ProcessGroup(run_dir / "logs")
    try:
        with group:
            cluster = create_local_cluster(run_dir, mode=mode, traffic=traffic)
            drill = Drill(cluster, group, lambda m: err_console.print(f"[dim]·[/] {m}"))
            drill.start_all()

            async def go() -> dict[str, Any]:
                try:
                    return await drill.run()
                finally:
                    await drill.close()

            result = asyncio.run(go())
            report.update(result)
            report["completed"] = True
    except (DrillError, ProcessError, ConfigError, OSError) as exc:
        report["error"] = str(exc)
    except KeyboardInterrupt:
        report["error"] = "interrupted; everything the demo started was stopped"
        report["interrupted"] = True
    finally:
        report["processes"] = {n: m.pids for n, m in group.procs.items()}
        report["left_running"] = [p for p in group.all_pids() if pid_alive(p)]
    return report


def _human(report: dict[str, Any], paths: dict[str, str]) -> None:
    m = report.get("measured") or {}
    rpo = m.get("rpo") or {}
    fb = report.get("failback") or {}
    layer = LAYERS.get(str(report.get("traffic")), "the router")

    def f(v: Any, unit: str = "") -> str:
        return "—" if v is None else (f"{v:.3f}{unit}" if isinstance(v, float) else f"{v}{unit}")

    rows = [
        {
            "measure": f"RTO (kill -9 -> first login through {layer})",
            "value": f(m.get("rto_s"), " s"),
        },
        {
            "measure": "first acknowledged write after the fault",
            "value": f(m.get("first_write_after_fault_s"), " s"),
        },
        {
            "measure": "RPO: acknowledged writes lost",
            "value": f"{f(rpo.get('lost'))} of {f(rpo.get('acknowledged_writes'))}",
        },
        {"measure": "RPO window", "value": f(rpo.get("window_s"), " s")},
        {
            "measure": "writes acknowledged by two primaries at once",
            "value": f(len(m.get("dual_primaries") or [])),
        },
        {
            "measure": "requests / failed (failover phase)",
            "value": f"{f(m.get('requests'))} / {f(m.get('failed'))}",
        },
        {"measure": "failback duration (ramp 10/25/50/100 %)", "value": f(fb.get("seconds"), " s")},
        {
            "measure": "failback: requests / failed / writes lost",
            "value": " / ".join(f(fb.get(k)) for k in ("requests", "failed", "lost_writes")),
        },
    ]
    ph = report.get("phases") or {}
    rows.insert(
        1,
        {
            "measure": "  of which: detected / promoted / promoted -> first login",
            "value": " / ".join(
                f(ph.get(k), " s") for k in ("detected_s", "promoted_s", "promote_to_first_login_s")
            ),
        },
    )
    rows.insert(0, {"measure": "replication mode", "value": f(report.get("replication_mode"))})
    rows.insert(1, {"measure": "traffic layer", "value": f(report.get("traffic"))})
    iss = report.get("issuer") or {}
    if iss:
        rows.append(
            {
                "measure": f"issuer (discovery via {layer}: before / after failover, failback)",
                "value": f"{iss.get('before_failover')} (unchanged)"
                if iss.get("same")
                else f"[red]changed[/]: {iss}",
            }
        )
    table(rows, ["measure", "value"], title=f"standby demo: {report['drill']}")
    for phase, found in (("failover", m.get("errors")), ("failback", fb.get("errors"))):
        errors = [
            {"operation": op, "error": k, "count": n}
            for op, kinds in (found or {}).items()
            for k, n in kinds.items()
        ]
        if errors:
            table(errors, ["operation", "error", "count"], title=f"errors clients saw in {phase}")
    events = [
        {"t (s)": f"{e['t']:+.3f}", "source": e.get("source"), "event": e.get("kind")}
        for e in report.get("timeline", [])
        if e.get("kind") not in ("decision", "weights_set") or e.get("source") == "drill"
    ]
    if events:
        table(events, ["t (s)", "source", "event"], title="timeline (seconds from the fault)")
    for note in report.get("notes", []):
        console.print(f"[dim]note:[/] {note}")
    console.print(f"report: {paths['json']}  {paths['html']}  history: {paths['history']}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def demo(
    out: Annotated[
        Path | None, typer.Option("--out", help="folder for the run and reports")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    mode: Annotated[str, typer.Option(help="replication mode: async or sync")] = "async",
    traffic: Annotated[
        str, typer.Option(help="traffic layer: builtin (standby router) or haproxy")
    ] = "builtin",
) -> None:
    """Run a real failover drill on this machine and report RTO, RPO and what clients saw."""
    from standby.drills import acks as ack_log
    from standby.drills import report as reports
    from standby.output import fail

    if mode not in ("async", "sync"):
        fail(f"--mode must be async or sync, got {mode!r}", 2)
    if traffic not in LAYERS:
        fail(f"--traffic must be builtin or haproxy, got {traffic!r}", 2)
    if traffic == "haproxy" and shutil.which("haproxy") is None:
        fail(
            "--traffic haproxy: haproxy is not installed or not on PATH (Debian: "
            "apt-get install haproxy); or run the demo with --traffic builtin",
            2,
        )
    out = out or Path("standby-demo")
    run_dir = out / time.strftime("run-%Y%m%d-%H%M%S")
    if run_dir.exists():
        fail(f"{run_dir} already exists; wait a second or choose another --out", 2)
    signal.signal(signal.SIGTERM, _interrupt)  # stop what we started when told to stop
    report = _run(run_dir, mode, traffic)
    from standby.drills.acks import Ack

    acks = [Ack.from_dict(a) for a in report.pop("acks", [])]
    run_dir.mkdir(parents=True, exist_ok=True)
    ack_log.write_jsonl(run_dir / "acks.jsonl", acks)
    report["ack_log"] = str(run_dir / "acks.jsonl")
    paths = {
        "json": str(reports.write_json(out / "report.json", report)),
        "html": str(reports.write_html(out / "report.html", report)),
        "history": str(reports.append_history(out / "drill-history.jsonl", report)),
    }
    if json_out:
        emit({**report, "reports": paths}, True)
    else:
        _human(report, paths)
    if report["left_running"]:
        fail(f"processes still running after the demo: {report['left_running']}", 1)
    if report.get("interrupted"):
        fail(str(report["error"]), 130)
    if not report["completed"]:
        fail(f"the drill did not complete: {report.get('error')} (logs: {run_dir / 'logs'})", 1)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
