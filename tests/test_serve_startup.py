"""What a real `standby serve` writes to its log at start: the migration it ran, once,
and none of alembic's own chatter (its plugins and migration context, on every start)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.sites import SiteProcess, make_site_dir


def _events_of(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_serve_logs_a_migration_once_and_no_alembic_lines(tmp_path: Path) -> None:
    config = make_site_dir(tmp_path, "site-a")
    seen: list[str] = []
    for _ in range(2):  # the first start creates the store, the second finds it current
        proc = SiteProcess(config).start()
        proc.stop()
        text = proc.log_path.read_text()
        seen.append(text)
        proc.log_path.unlink()
    for text in seen:
        assert "alembic" not in text and "Context impl" not in text, text
    first, second = ([e for e in _events_of(t) if e.get("event") == "store_migrated"] for t in seen)
    assert len(first) == 1 and first[0]["from"] is None and first[0]["to"], seen[0]
    assert second == [], seen[1]
