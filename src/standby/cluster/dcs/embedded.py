"""The embedded DCS: the controller's own SQLite file for the leader key, leases on
the controller's monotonic clock (a lease cannot outlive the process that granted it,
so leases are kept in memory; a restarted controller starts with none)."""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from standby.cluster.dcs.base import Dcs, DcsError, Leader

_SCHEMA = "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, rev INTEGER)"
LEADER_KEY = "leader"


@dataclass
class _Lease:
    holder: str
    ttl: float
    expires_at: float


def read_leader(path: str | Path) -> Leader | None:
    """The leader key, read without creating or changing anything (a command beside the
    controller, e.g. `standby traffic haproxy-config`); DcsError when there is no file."""
    path = Path(path)
    if not path.exists():
        raise DcsError(f"{path}: no such file (has the controller run with this topology?)")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value, rev FROM kv WHERE key = ?", (LEADER_KEY,)).fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise DcsError(f"{path}: cannot read the controller's store: {exc}") from exc
    if row is None:
        return None
    data = json.loads(row[0])
    return Leader(str(data["primary"]), int(data["epoch"]), int(row[1]))


class EmbeddedDcs(Dcs):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise DcsError(f"{self.path}: cannot open the controller's store: {exc}") from exc
        self._lock = threading.Lock()
        self._leases: dict[str, _Lease] = {}

    def _get(self) -> Leader | None:
        row = self._db.execute("SELECT value, rev FROM kv WHERE key = ?", (LEADER_KEY,)).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return Leader(str(data["primary"]), int(data["epoch"]), int(row[1]))

    async def get_leader(self) -> Leader | None:
        with self._lock:
            return self._get()

    def _cas(self, primary: str, epoch: int, expected: int) -> Leader | None:
        value = json.dumps({"primary": primary, "epoch": epoch})
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                current = self._get()
                if (current.revision if current else 0) != expected:
                    self._db.execute("ROLLBACK")
                    return None
                rev = expected + 1
                self._db.execute(
                    "INSERT INTO kv (key, value, rev) VALUES (?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, rev = excluded.rev",
                    (LEADER_KEY, value, rev),
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise DcsError(f"{self.path}: write failed: {exc}") from exc
        return Leader(primary, epoch, rev)

    async def put_leader(
        self, primary: str, epoch: int, *, expected_revision: int
    ) -> Leader | None:
        return await asyncio.to_thread(self._cas, primary, epoch, expected_revision)

    async def lease_grant(self, holder: str, ttl: float) -> str:
        lease_id = secrets.token_hex(8)
        self._leases[lease_id] = _Lease(holder, ttl, time.monotonic() + ttl)
        return lease_id

    async def lease_renew(self, lease_id: str) -> bool:
        lease = self._leases.get(lease_id)
        now = time.monotonic()
        if lease is None or now >= lease.expires_at:
            self._leases.pop(lease_id, None)
            return False
        lease.expires_at = now + lease.ttl
        return True

    async def lease_remaining(self, lease_id: str) -> float | None:
        lease = self._leases.get(lease_id)
        if lease is None:
            return None
        left = lease.expires_at - time.monotonic()
        return left if left > 0 else None

    async def lease_revoke(self, lease_id: str) -> None:
        self._leases.pop(lease_id, None)

    async def close(self) -> None:
        with self._lock:
            self._db.close()
