"""A standby behind what the primary's log still holds catches up from the backup archive."""

from __future__ import annotations

from pathlib import Path

import pytest

from standby.backup.context import Backups
from standby.store import Store
from tests.support.replication import (
    WorkloadSite,
    caught_up,
    secret_of,
    snapshot,
    status,
    tenant_op,
    user_op,
    wait_for,
    write,
    write_pair,
)
from tests.support.sites import SiteProcess, load_site

pytestmark = pytest.mark.slow


def _trim(url: str, upto: int) -> None:
    """What log retention does on a primary: drop records <= upto, keep a checkpoint."""
    store = Store(url, "site-a")
    try:
        assert store.trim(upto) > 0
    finally:
        store.close()


def test_standby_catches_up_from_the_archive_then_streams(
    tmp_path: Path, store_url_pair: list[str]
) -> None:
    archive = {"directory": str(tmp_path / "archive"), "segment_seconds": 0.1}
    pc, sc = write_pair(tmp_path, store_url_pair)
    for cfg in (pc, sc):  # both sites see the same archive
        text = cfg.read_text() + "backup:\n" + "".join(f"  {k}: {v}\n" for k, v in archive.items())
        cfg.write_text(text)
    secret = secret_of(pc)
    a = WorkloadSite(pc).start()
    b = SiteProcess(sc)
    try:
        assert write(a.url, [tenant_op("t1")]).status_code == 200
        for i in range(10):
            last = write(a.url, [user_op(f"u{i}")]).json()["lsn"]
        settings, secrets = load_site(pc)
        catalog = Backups.open(settings, secrets).catalog

        def archived() -> bool:
            seg = catalog.last_segment()
            return seg is not None and seg.last_lsn >= last

        wait_for(archived)
        _trim(store_url_pair[0], last - 2)
        assert status(a.url, secret)["head_lsn"] == last
        b.start()
        for i in range(10, 13):
            last = write(a.url, [user_op(f"u{i}")]).json()["lsn"]
        wait_for(lambda: caught_up(b.url, secret, last))
        assert snapshot(store_url_pair[1], "site-b") == snapshot(store_url_pair[0], "site-a")
        assert "caught_up_from_archive" in b.log_path.read_text()
    finally:
        b.stop()
        a.stop()
