"""Drill reports: JSON, a self-contained HTML page, and a line in the drill history."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def write_json(path: Path, report: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)  # never a half-written report
    return path


def history_line(report: dict[str, Any]) -> dict[str, Any]:
    m = report.get("measured", {})
    return {
        "drill": report.get("drill"),
        "started_at": report.get("started_at"),
        "completed": report.get("completed"),
        # RTO and RPO mean little without it: sync trades RTO for RPO = 0.
        "replication_mode": report.get("replication_mode"),
        "rto_s": m.get("rto_s"),
        "rpo_lost": (m.get("rpo") or {}).get("lost"),
        "rpo_window_s": (m.get("rpo") or {}).get("window_s"),
        "requests": m.get("requests"),
        "failed": m.get("failed"),
        "dual_primaries": len(m.get("dual_primaries") or []),
        "issuer": (report.get("issuer") or {}).get("before_failover"),
        "issuer_unchanged": (report.get("issuer") or {}).get("same"),
    }


def append_history(path: Path, report: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(history_line(report), default=str) + "\n")
    return path


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in pairs
    )


def render_html(report: dict[str, Any]) -> str:
    m = report.get("measured", {})
    rpo = m.get("rpo") or {}
    headline = [
        ("completed", report.get("completed")),
        ("replication mode", report.get("replication_mode")),
        ("RTO: fault to first successful login through the router (s)", m.get("rto_s")),
        ("first acknowledged write after the fault (s)", m.get("first_write_after_fault_s")),
        ("RPO: acknowledged writes lost", rpo.get("lost")),
        ("RPO window (s)", rpo.get("window_s")),
        ("acknowledged writes", rpo.get("acknowledged_writes")),
        ("requests / failed", f"{m.get('requests')} / {m.get('failed')}"),
        ("writes acknowledged by two primaries at once", len(m.get("dual_primaries") or [])),
    ]
    iss = report.get("issuer")
    if iss:
        headline += [
            ("public URL (the router; every site's issuer base)", iss.get("public_url")),
            ("issuer in discovery before the fault", iss.get("before_failover")),
            (
                "... after failover / after failback",
                f"{iss.get('after_failover')} / {iss.get('after_failback')}",
            ),
            ("issuer unchanged", iss.get("same")),
        ]
    fb = report.get("failback")
    if fb:
        headline += [
            ("failback duration (s)", fb.get("seconds")),
            ("failback: requests / failed", f"{fb.get('requests')} / {fb.get('failed')}"),
            ("failback: acknowledged writes lost", fb.get("lost_writes")),
        ]
    if report.get("error"):
        headline.insert(0, ("error", report["error"]))
    errors = (
        "".join(
            f"<tr><td>{html.escape(op)}</td><td>{html.escape(kind)}</td><td>{n}</td></tr>"
            for op, kinds in (m.get("errors") or {}).items()
            for kind, n in kinds.items()
        )
        or "<tr><td colspan=3>none</td></tr>"
    )
    timeline = "".join(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>".format(
            html.escape(_fmt(e.get("t"))),
            html.escape(str(e.get("source", ""))),
            html.escape(str(e.get("kind", ""))),
            html.escape(
                json.dumps(
                    {
                        k: v
                        for k, v in e.items()
                        if k not in ("t", "at", "mono", "source", "kind", "seq")
                    },
                    default=str,
                )[:300]
            ),
        )
        for e in report.get("timeline", [])
    )
    notes = "".join(f"<li>{html.escape(str(n))}</li>" for n in report.get("notes", []))
    title = html.escape(f"Standby drill: {report.get('drill', '')}")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}
table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}
th{{background:#f4f4f4}} code{{font-size:.85em}}
</style></head><body>
<h1>{title}</h1>
<p>started {html.escape(str(report.get("started_at", "")))}</p>
<h2>Measured</h2><table>{_rows(headline)}</table>
<h2>Errors clients saw</h2>
<table><tr><th>operation</th><th>error</th><th>count</th></tr>{errors}</table>
<h2>Timeline</h2><p>t: seconds from the fault (negative: before it)</p>
<table><tr><th>t</th><th>source</th><th>event</th><th>detail</th></tr>{timeline}</table>
<h2>Notes</h2><ul>{notes}</ul>
</body></html>
"""


def write_html(path: Path, report: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report))
    return path
