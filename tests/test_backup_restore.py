"""Backup and point-in-time restore on every store (SQLite, PostgreSQL) and every backend
(local directory, real S3): round trip, LSN and time targets, tenant, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from standby.backup.create import create_set
from standby.backup.errors import MissingSegment, NoBackup, TargetNotEmpty
from standby.backup.plan import Target
from standby.backup.restore import restore
from standby.backup.segments import Archiver
from standby.store import Store
from standby.store.schema import REPLICATED_TABLES, users
from standby.store.verify import verify_store
from tests.support.backup import (  # noqa: F401 - fixture
    BackupSite,
    add_users,
    backup_backend,
    make_backup_site,
)


@pytest.fixture
def bsite(store_url: str, backup_backend: dict[str, Any], tmp_path: Path) -> Iterator[BackupSite]:  # noqa: F811
    b = make_backup_site(tmp_path, store_url, backup_backend, backup={"segment_records": 7})
    try:
        yield b
    finally:
        b.close()


def _archive(b: BackupSite) -> None:
    cfg = b.site.settings.backup
    Archiver(
        b.store,
        b.backups.catalog,
        segment_seconds=cfg.segment_seconds,
        segment_records=cfg.segment_records,
    ).tick(force=True)


def _counts(store: Store) -> dict[str, int]:
    with store.read() as conn:
        return {
            n: int(conn.execute(select(func.count()).select_from(t)).scalar() or 0)
            for n, t in REPLICATED_TABLES.items()
        }


def _usernames(url: str, site: str = "site-a") -> set[str]:
    s = Store(url, site)
    try:
        with s.read() as conn:
            return {r[0] for r in conn.execute(select(users.c.username))}
    finally:
        s.close()


def test_round_trip_equals_source_and_chain_verifies(bsite: BackupSite, tmp_path: Path) -> None:
    add_users(bsite.site, "acme", [f"u{i}" for i in range(6)])
    create_set(bsite.site, bsite.backups)
    add_users(bsite.site, "acme", [f"v{i}" for i in range(5)])
    _archive(bsite)
    segs = bsite.backups.catalog.segments()
    assert len(segs) >= 2  # 7-record segments: the archive spans several
    assert all(s.first_lsn > 0 for s in segs)
    url = f"sqlite:///{tmp_path / 'restored.db'}"
    report = restore(bsite.backups, url, Target())
    assert report["reached"]["lsn"] == bsite.store.head().lsn
    restored = Store(url, "site-a")
    try:
        assert _counts(restored) == _counts(bsite.store)
        assert verify_store(restored).ok
        assert restored.head() == bsite.store.head()
    finally:
        restored.close()


def test_to_lsn_stops_on_a_transaction_boundary_and_to_time(
    bsite: BackupSite, tmp_path: Path
) -> None:
    add_users(bsite.site, "acme", ["a0"])
    create_set(bsite.site, bsite.backups)
    add_users(bsite.site, "acme", ["a1"])
    mid = bsite.store.head()
    add_users(bsite.site, "acme", ["a2"])
    _archive(bsite)
    url = f"sqlite:///{tmp_path / 'lsn.db'}"
    report = restore(bsite.backups, url, Target(lsn=mid.lsn))
    assert report["reached"]["lsn"] == mid.lsn
    assert {"a0", "a1"} <= _usernames(url) and "a2" not in _usernames(url)
    # One record into the next transaction: restore stops at the last whole one.
    url2 = f"sqlite:///{tmp_path / 'mid.db'}"
    report = restore(bsite.backups, url2, Target(lsn=mid.lsn + 1))
    assert report["reached"]["lsn"] == mid.lsn and report["notes"]
    url3 = f"sqlite:///{tmp_path / 'time.db'}"
    report = restore(bsite.backups, url3, Target(time_us=mid.committed_at))
    assert report["reached"]["lsn"] == mid.lsn
    assert "a2" not in _usernames(url3)


def test_refusals(bsite: BackupSite, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with pytest.raises(NoBackup, match="no backup set"):
        restore(bsite.backups, url, Target())
    add_users(bsite.site, "acme", ["a0"])
    create_set(bsite.site, bsite.backups)
    with pytest.raises(NoBackup, match="before the oldest backup"):
        restore(bsite.backups, url, Target(time_us=1_000_000))
    with pytest.raises(MissingSegment, match="not archived"):
        restore(bsite.backups, url, Target(lsn=bsite.store.head().lsn + 50))
    assert not Path(url[len("sqlite:///") :]).exists()
    restore(bsite.backups, url, Target())
    with pytest.raises(TargetNotEmpty, match="--force"):
        restore(bsite.backups, url, Target())
    restore(bsite.backups, url, Target(), force=True)


def test_tenant_restore_keeps_only_that_tenant(bsite: BackupSite, tmp_path: Path) -> None:
    add_users(bsite.site, "acme", ["a0", "a1"])
    add_users(bsite.site, "globex", ["g0"])
    create_set(bsite.site, bsite.backups)
    add_users(bsite.site, "globex", ["g1"])
    add_users(bsite.site, "acme", ["a2"])
    _archive(bsite)
    url = f"sqlite:///{tmp_path / 't.db'}"
    restore(bsite.backups, url, Target(), tenant="acme")
    assert _usernames(url) == {"a0", "a1", "a2"}
