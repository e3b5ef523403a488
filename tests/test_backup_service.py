"""The service side: a site archives segments and runs scheduled backups and verified
restores as background tasks; the last verified restore shows in /metrics. Also key
rotation and pruning through the CLI."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from standby.backup.context import Backups
from standby.backup.create import create_set
from standby.backup.verify import verify_set
from standby.cli import app as cli_app
from standby.server import create_app
from standby.settings import new_key
from tests.support.backup import BackupSite, add_users, backend_config, make_backup_site
from tests.support.sites import load_site

METRIC = re.compile(r"^standby_last_verified_restore_timestamp ([0-9.e+]+)$", re.M)


@pytest.fixture
def bsite(store_url: str, tmp_path: Path) -> Iterator[BackupSite]:
    b = make_backup_site(
        tmp_path,
        store_url,
        backend_config("local", None),
        backup={
            "segment_seconds": 0.2,
            "schedule_backup_seconds": 0.5,
            "schedule_verify_seconds": 0.7,
        },
    )
    try:
        yield b
    finally:
        b.close()


def test_service_archives_backs_up_and_verifies_on_schedule(bsite: BackupSite) -> None:
    add_users(bsite.site, "acme", ["alice"])
    api = create_app(bsite.site)
    with TestClient(api) as client:
        assert METRIC.search(client.get("/metrics").text) is None  # never verified yet
        add_users(bsite.site, "acme", ["bob"])
        head = bsite.store.head().lsn
        deadline = time.monotonic() + 60
        value = None
        archived = 0
        while time.monotonic() < deadline:
            m = METRIC.search(client.get("/metrics").text)
            last = bsite.backups.catalog.last_segment()
            archived = last.last_lsn if last else 0
            if m and archived >= head:
                value = float(m.group(1))
                break
            time.sleep(0.1)
    assert archived >= head, "the archiver did not seal bob's records"
    assert value is not None, "no verified restore reported in /metrics"
    results = bsite.backups.catalog.verifications()
    assert any(r["ok"] and r["checks"]["canary_login"]["ok"] for r in results.values())
    assert value == pytest.approx(bsite.backups.catalog.last_verified_ok())


def test_old_sets_verify_after_key_rotation(bsite: BackupSite) -> None:
    add_users(bsite.site, "acme", ["alice"])
    old = create_set(bsite.site, bsite.backups)
    secrets_path = bsite.config.parent / "secrets.yaml"
    data = yaml.safe_load(secrets_path.read_text())
    data["backup_keys_old"] = [data["backup_key"]]
    data["backup_key"] = new_key()
    secrets_path.write_text(yaml.safe_dump(data))
    os.chmod(secrets_path, 0o600)
    settings, secrets = load_site(bsite.config)
    rotated = Backups.open(settings, secrets)
    new = create_set(bsite.site, rotated)
    assert rotated.keyring.current_id != bsite.backups.keyring.current_id
    for m in (old, new):
        result = verify_set(rotated, m["id"])
        assert result["ok"], result["checks"]


def test_prune_dry_run_then_prune(bsite: BackupSite) -> None:
    runner = CliRunner(env={"COLUMNS": "250"})
    for i in range(3):
        add_users(bsite.site, "acme", [f"u{i}"])
        create_set(bsite.site, bsite.backups)
    cfg = yaml.safe_load(bsite.config.read_text())
    cfg["backup"]["keep_count"] = 1
    bsite.config.write_text(yaml.safe_dump(cfg))

    def run(*args: str) -> dict[str, Any]:
        res = runner.invoke(cli_app, ["backup", *args, "-c", str(bsite.config), "--json"])
        assert res.exit_code == 0, res.output
        return dict(json.loads(res.stdout))

    dry = run("prune", "--dry-run")
    assert len(dry["delete_sets"]) == 2 and len(dry["keep_sets"]) == 1
    assert len(run("list")["sets"]) == 3
    run("prune")
    left = run("list")["sets"]
    assert [s["id"] for s in left] == list(dry["keep_sets"])


def test_cli_errors_are_clear(bsite: BackupSite, tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "250"})
    add_users(bsite.site, "acme", ["alice"])
    create_set(bsite.site, bsite.backups)
    target = f"sqlite:///{tmp_path / 'r.db'}"
    res = runner.invoke(
        cli_app,
        ["restore", "-c", str(bsite.config), "--target-url", target, "--to-time", "2001-01-01"],
    )
    assert res.exit_code == 1 and "before the oldest backup" in res.output
    assert "Traceback" not in res.output
    cfg = yaml.safe_load(bsite.config.read_text())
    cfg["backup"] = {"backend": "s3", "s3_bucket": "b", "s3_endpoint": "http://127.0.0.1:9"}
    bsite.config.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(cli_app, ["restore", "-c", str(bsite.config), "--target-url", target])
    assert res.exit_code == 1 and "no S3 credentials" in res.output
    secrets_path = bsite.config.parent / "secrets.yaml"
    data = yaml.safe_load(secrets_path.read_text())
    secrets_path.write_text(yaml.safe_dump({**data, "s3_access_key": "a", "s3_secret_key": "b"}))
    res = runner.invoke(cli_app, ["restore", "-c", str(bsite.config), "--target-url", target])
    assert res.exit_code == 1 and "cannot reach S3" in res.output
    assert not (tmp_path / "r.db").exists()


def test_objects_without_manifest_are_ignored(bsite: BackupSite, tmp_path: Path) -> None:
    """An interrupted upload (object written, manifest not) never looks like a backup."""
    from standby.backup.catalog import segment_base, set_object
    from standby.backup.plan import Target
    from standby.backup.restore import restore

    add_users(bsite.site, "acme", ["alice"])
    m = create_set(bsite.site, bsite.backups)
    head = bsite.store.head().lsn
    storage = bsite.backups.storage
    storage.put(set_object("29991231T000000000000Z-999"), b"partial snapshot")
    storage.put(segment_base(head + 1, head + 50, 1) + ".sbk", b"partial segment")
    sets = bsite.backups.catalog.sets()
    assert [s["id"] for s in sets] == [m["id"]]
    assert bsite.backups.catalog.segments() == []
    report = restore(bsite.backups, f"sqlite:///{tmp_path / 'r.db'}", Target())
    assert report["set"] == m["id"] and report["reached"]["lsn"] == head


def test_verify_catches_a_row_changed_outside_the_change_log(bsite: BackupSite) -> None:
    from sqlalchemy import update

    from standby.store.schema import users

    add_users(bsite.site, "acme", ["alice", "bob"])
    assert verify_set(bsite.backups, create_set(bsite.site, bsite.backups)["id"])["ok"]
    with bsite.store.engine.begin() as conn:  # bypasses the change log: tampering
        conn.execute(update(users).where(users.c.username == "bob").values(email="x@evil.test"))
    result = verify_set(bsite.backups, create_set(bsite.site, bsite.backups)["id"])
    assert not result["ok"]
    check = result["checks"]["log_matches_rows"]
    assert not check["ok"] and "email" in check["detail"]
