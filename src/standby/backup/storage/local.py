"""A local directory as the backup store; each put is a temp file, fsync, then rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from standby.backup.errors import BackupError, StorageUnavailable
from standby.backup.storage.base import Storage, StoredObject

TEMP_SUFFIX = ".partial"


class LocalStorage(Storage):
    def __init__(self, directory: str | Path) -> None:
        self.root = Path(directory)
        self.description = f"directory {self.root}"

    def _path(self, name: str) -> Path:
        if name.startswith("/") or ".." in name.split("/"):
            raise BackupError(f"object name {name!r} is not allowed")
        return self.root / name

    def put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=TEMP_SUFFIX)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise StorageUnavailable(f"cannot write {name} to {self.description}: {exc}") from exc

    def get(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise BackupError(f"object {name} is missing from {self.description}") from None
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {name} from {self.description}: {exc}") from exc

    def list(self, prefix: str) -> list[StoredObject]:
        if not self.root.exists():
            return []
        out = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.endswith(TEMP_SUFFIX):
                name = path.relative_to(self.root).as_posix()
                if name.startswith(prefix):
                    out.append(StoredObject(name, path.stat().st_size))
        return sorted(out, key=lambda o: o.name)

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)
