"""Disaster drills, end to end through the CLI: (1) lose the store and restore the latest,
then log in; (2) a mass delete of users, found with `log find`, undone by restoring to
just before it; (3) a flipped byte or a wrong key: restore and verify refuse, naming the
object, and write nothing. Run on SQLite + local directory and PostgreSQL + real S3."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import inspect, select
from typer.testing import CliRunner

from standby.backup.errors import CorruptObject
from standby.cli import app
from standby.identity.authn import authenticate
from standby.server import Site
from standby.settings import new_key
from standby.store import Store
from standby.store.schema import users
from tests.support.backup import PASSWORD, BackupSite, add_users, backend_config, make_backup_site
from tests.support.postgres import PostgresServer

runner = CliRunner(env={"COLUMNS": "250"})


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def cli_json(*args: str) -> dict[str, Any]:
    res = cli(*args, "--json")
    assert res.exit_code == 0, res.output
    return dict(json.loads(res.stdout))


class Env:
    """A store URL factory for one database kind, plus the backend."""

    def __init__(self, kind: str, tmp: Path, pg: PostgresServer | None, backend: dict[str, Any]):
        self.kind, self.tmp, self.pg, self.backend = kind, tmp, pg, backend
        self.dbs: list[str] = []

    def new_url(self, name: str) -> str:
        if self.pg is None:
            return f"sqlite:///{self.tmp / (name + '.db')}"
        db = self.pg.create_database()
        self.dbs.append(db)
        return self.pg.url(db)

    def is_empty(self, url: str) -> bool:
        if self.pg is None:
            return not Path(url[len("sqlite:///") :]).exists()
        store = Store(url, "probe")
        try:
            with store.engine.connect() as conn:
                return not inspect(conn).get_table_names()
        finally:
            store.close()

    def destroy(self, url: str) -> None:
        """Lose the store entirely (file deleted / database dropped and recreated empty)."""
        if self.pg is None:
            for suffix in ("", "-wal", "-shm"):
                Path(url[len("sqlite:///") :] + suffix).unlink(missing_ok=True)
            return
        db = url.rsplit("/", 1)[1]
        self.pg.drop_database(db)
        self.pg.create_database(db)


@pytest.fixture(params=["sqlite-local", "postgres-s3"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    kind, backend = str(request.param).split("-")
    pg = request.getfixturevalue("postgres") if kind == "postgres" else None
    s3 = request.getfixturevalue("s3_server") if backend == "s3" else None
    e = Env(kind, tmp_path, pg, backend_config(backend, s3))
    try:
        yield e
    finally:
        if pg is not None:
            for db in e.dbs:
                pg.drop_database(db)


@pytest.fixture
def bsite(env: Env) -> Iterator[BackupSite]:
    b = make_backup_site(env.tmp, env.new_url("site"), env.backend)
    try:
        yield b
    finally:
        b.close()


def _login(url: str, b: BackupSite, username: str) -> None:
    store = Store(url, b.site.name)
    try:
        result = authenticate(
            Site(b.site.settings, b.site.secrets, store), "acme", username, PASSWORD
        )
        assert result.user["username"] == username
    finally:
        store.close()


def _usernames(url: str) -> set[str]:
    store = Store(url, "x")
    try:
        with store.read() as conn:
            return {
                r[0] for r in conn.execute(select(users.c.username).where(users.c.tenant == "acme"))
            }
    finally:
        store.close()


def test_drill_lost_store_restore_latest_then_login(env: Env, bsite: BackupSite) -> None:
    add_users(bsite.site, "acme", ["alice", "bob"])
    cli_json("backup", "create", "-c", str(bsite.config))
    add_users(bsite.site, "acme", ["carol"])  # only in the archived segments
    cli_json("backup", "archive", "-c", str(bsite.config))
    head = bsite.store.head()
    url = bsite.site.settings.store.url
    bsite.store.close()
    env.destroy(url)
    report = cli_json("restore", "-c", str(bsite.config), "--target-url", url)
    assert report["reached"]["lsn"] == head.lsn
    assert report["reached"]["epoch"] == head.epoch
    _login(url, bsite, "carol")
    _login(url, bsite, "alice")
    res = cli("verify-log", "-c", str(bsite.config))
    assert res.exit_code == 0, res.output


def test_drill_mass_delete_found_and_undone(env: Env, bsite: BackupSite) -> None:
    ids = add_users(bsite.site, "acme", [f"user{i}" for i in range(8)])
    cli_json("backup", "create", "-c", str(bsite.config))
    ids += add_users(bsite.site, "acme", ["late1", "late2"])
    with bsite.store.write() as w:  # the accident: every user deleted in one transaction
        for uid in ids:
            w.delete("users", uid)
    add_users(bsite.site, "acme", ["after"])
    cli_json("backup", "archive", "-c", str(bsite.config))
    found = cli_json(
        "log", "find", "-c", str(bsite.config), "--entity", "users", "--op", "delete", "--first"
    )
    before = found["restore_before"]
    assert found["first"]["entity"] == "users" and found["first"]["op"] == "delete"
    # Same answer from the archive alone (for when the store itself is gone).
    archived = cli_json(
        "log",
        "find",
        "-c",
        str(bsite.config),
        "--entity",
        "users",
        "--op",
        "delete",
        "--from-backup",
    )
    assert archived["restore_before"] == before
    assert archived["transactions"][0]["count"] == len(ids)
    target = env.new_url("undo")
    report = cli_json(
        "restore", "-c", str(bsite.config), "--target-url", target, "--to-lsn", str(before)
    )
    assert report["reached"]["lsn"] == before
    names = _usernames(target)
    assert {f"user{i}" for i in range(8)} | {"late1", "late2"} <= names
    assert "after" not in names
    _login(target, bsite, "late2")


def _flip_segment_byte(b: BackupSite) -> str:
    seg = b.backups.catalog.segments()[-1]
    blob = bytearray(b.backups.storage.get(seg.object_name))
    blob[len(blob) // 2] ^= 0x40
    b.backups.storage.put(seg.object_name, bytes(blob))
    return seg.object_name


def test_drill_corrupt_object_or_wrong_key_writes_nothing(env: Env, bsite: BackupSite) -> None:
    add_users(bsite.site, "acme", ["alice"])
    cli_json("backup", "create", "-c", str(bsite.config))
    add_users(bsite.site, "acme", ["bob"])
    cli_json("backup", "archive", "-c", str(bsite.config))
    ok = cli("backup", "verify", "-c", str(bsite.config), "--latest")
    assert ok.exit_code == 0, ok.output
    name = _flip_segment_byte(bsite)
    target = env.new_url("target")
    res = cli("restore", "-c", str(bsite.config), "--target-url", target)
    assert res.exit_code == 1
    assert f"corrupt object {name}" in res.output
    assert env.is_empty(target)
    res = cli("backup", "verify", "-c", str(bsite.config), "--json")
    assert res.exit_code == 1
    detail = json.loads(res.stdout)["results"][0]["checks"]["decrypt_checksums"]
    assert not detail["ok"] and name in detail["detail"]
    listing = cli_json("backup", "list", "-c", str(bsite.config))
    assert listing["sets"][0]["verified"]["ok"] is False
    # A wrong backup key: refused, naming what it could not open.
    secrets_path = bsite.config.parent / "secrets.yaml"
    data = yaml.safe_load(secrets_path.read_text())
    secrets_path.write_text(yaml.safe_dump({**data, "backup_key": new_key()}))
    os.chmod(secrets_path, 0o600)
    res = cli("restore", "-c", str(bsite.config), "--target-url", target)
    assert res.exit_code == 1
    assert "not in the keyring" in res.output and "manifest" in res.output
    assert env.is_empty(target)


def test_missing_segment_is_named(env: Env, bsite: BackupSite) -> None:
    add_users(bsite.site, "acme", ["alice"])
    cli_json("backup", "create", "-c", str(bsite.config))
    for name in ("bob", "carol", "dave"):
        add_users(bsite.site, "acme", [name])
        cli_json("backup", "archive", "-c", str(bsite.config))
    segs = bsite.backups.catalog.segments()
    assert len(segs) == 3
    bsite.backups.storage.delete(segs[1].manifest_name)
    bsite.backups.storage.delete(segs[1].object_name)
    target = env.new_url("gap")
    res = cli("restore", "-c", str(bsite.config), "--target-url", target)
    assert res.exit_code == 1
    assert f"missing segment: records {segs[1].first_lsn}..{segs[1].last_lsn}" in res.output
    assert env.is_empty(target)
    # Up to the gap still works.
    report = cli_json(
        "restore",
        "-c",
        str(bsite.config),
        "--target-url",
        target,
        "--to-lsn",
        str(segs[0].last_lsn),
    )
    assert report["reached"]["lsn"] == segs[0].last_lsn


def test_corrupt_object_error_type(env: Env, bsite: BackupSite) -> None:
    """The library raises CorruptObject (the CLI's message comes from it)."""
    from standby.backup.plan import Target
    from standby.backup.restore import restore

    add_users(bsite.site, "acme", ["alice"])
    cli_json("backup", "create", "-c", str(bsite.config))
    m = bsite.backups.catalog.sets()[-1]
    obj = m["objects"][0]["name"]
    blob = bytearray(bsite.backups.storage.get(obj))
    blob[-3] ^= 1
    bsite.backups.storage.put(obj, bytes(blob))
    with pytest.raises(CorruptObject) as info:
        restore(bsite.backups, env.new_url("c"), Target())
    assert info.value.name == obj
