"""Backup stores on a local directory and a real S3 server: same behaviour, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from standby.backup.errors import BackupError, StorageUnavailable
from standby.backup.storage import make_storage
from standby.backup.storage.local import LocalStorage
from standby.backup.storage.s3 import S3Storage
from standby.settings import BackupSettings, Secrets
from tests.support.backup import backup_backend  # noqa: F401 - fixture
from tests.support.postgres import free_port


def _storage(backend: dict[str, Any], tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg = {**backend["backup"]}
    if cfg["backend"] == "local":
        cfg["directory"] = str(tmp_path / "backups")
    secrets = Secrets(admin_token="a", kek="A" * 43, replication_secret="r", **backend["secrets"])
    return make_storage(BackupSettings(**cfg), secrets)


def test_put_get_list_delete(backup_backend: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    st = _storage(backup_backend, tmp_path)
    st.put("sets/a/manifest.json", b"m")
    st.put("segments/1.sbk", b"x" * 1000)
    assert st.get("segments/1.sbk") == b"x" * 1000
    assert [(o.name, o.size) for o in st.list("segments/")] == [("segments/1.sbk", 1000)]
    assert st.exists("sets/a/manifest.json")
    st.delete("segments/1.sbk")
    assert st.list("segments/") == []
    with pytest.raises(BackupError, match="segments/1.sbk is missing"):
        st.get("segments/1.sbk")


def test_local_put_never_shows_a_partial_object(tmp_path: Path) -> None:
    st = LocalStorage(tmp_path)
    st.put("a/b.sbk", b"1" * 10)
    st.put("a/b.sbk", b"2" * 20)
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.sbk"]
    assert st.get("a/b.sbk") == b"2" * 20
    with pytest.raises(BackupError, match="not allowed"):
        st.put("../escape", b"x")


def test_unreachable_s3_is_a_clear_error() -> None:
    st = S3Storage(
        "bucket",
        endpoint=f"http://127.0.0.1:{free_port()}",
        access_key="a",
        secret_key="b",
        attempts=1,
    )
    with pytest.raises(StorageUnavailable, match="cannot reach S3"):
        st.list("sets/")
    with pytest.raises(StorageUnavailable, match="cannot reach S3"):
        st.put("x", b"y")
