"""Drill reports: JSON written whole, HTML escapes what it shows, history appends."""

from __future__ import annotations

import json
from pathlib import Path

from standby.drills import report
from standby.drills.acks import Ack, read_jsonl, write_jsonl


def sample() -> dict[str, object]:
    return {
        "drill": "kill -9 <script>",
        "started_at": "2026-01-01T00:00:00Z",
        "completed": True,
        "measured": {
            "rto_s": 1.25,
            "requests": 10,
            "failed": 2,
            "rpo": {"lost": 1, "window_s": 0.2, "acknowledged_writes": 4},
            "errors": {"login": {"http_503 no_healthy_site": 2}},
            "dual_primaries": [],
        },
        "timeline": [
            {"t": -1.0, "at": 1.0, "source": "drill", "kind": "workload_started"},
            {"t": 0.5, "at": 2.5, "source": "controller", "kind": "promoted", "site": "b"},
        ],
        "notes": ["fast argon2"],
    }


def test_json_html_and_history(tmp_path: Path) -> None:
    data = sample()
    path = report.write_json(tmp_path / "r" / "report.json", data)
    assert json.loads(path.read_text()) == data
    assert not list(tmp_path.glob("r/*.tmp"))
    page = report.write_html(tmp_path / "report.html", data).read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "1.250" in page and "promoted" in page and "http_503 no_healthy_site" in page
    page = report.render_html(
        {
            **data,
            "failback": {"seconds": 6.5, "requests": 9, "failed": 1, "lost_writes": 0},
            "error": "x<y",
        }
    )
    assert "6.500" in page and "x&lt;y" in page
    hist = tmp_path / "history.jsonl"
    report.append_history(hist, data)
    report.append_history(hist, {**data, "completed": False})
    lines = [json.loads(x) for x in hist.read_text().splitlines()]
    assert [x["completed"] for x in lines] == [True, False]
    assert lines[0]["rto_s"] == 1.25 and lines[0]["rpo_lost"] == 1


def test_ack_log_round_trip(tmp_path: Path) -> None:
    acks = [
        Ack("write", "w1", 1.0, 1.5, 10.0, 10.5, True, 201, None, "a", 1),
        Ack("login", "u", 2.0, 2.1, 11.0, 11.1, False, None, "connect_error", None, None),
    ]
    write_jsonl(tmp_path / "acks.jsonl", acks)
    assert read_jsonl(tmp_path / "acks.jsonl") == acks


def test_history_and_page_name_the_replication_mode(tmp_path: Path) -> None:
    """An RTO or RPO read from the history means little without the mode it was run in."""
    for mode in ("async", "sync"):
        data = {**sample(), "replication_mode": mode}
        assert report.history_line(data)["replication_mode"] == mode
        page = report.render_html(data)
        assert f"<th>replication mode</th><td>{mode}</td>" in page
