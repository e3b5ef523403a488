"""Writing a loaded backup into a target store so that it only ever appears complete:
PostgreSQL in one transaction (DDL included); SQLite into a temp file beside the target,
renamed over it at the end. A refused or failed restore leaves the target untouched."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Table, create_engine, event, insert, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateIndex, CreateTable

from standby.backup.errors import BackupError, TargetNotEmpty
from standby.backup.load import Loaded
from standby.backup.snapshot import SNAPSHOT_TABLES, gc_paused
from standby.store.engine import (
    check_url,
    db_error_line,
    describe,
    is_postgres,
    make_engine,
    normalize_url,
)
from standby.store.migrate import MIGRATIONS
from standby.store.schema import change_log, metadata, store_meta, timeline_history
from standby.store.store import apply_row, now_us

BATCH = 5000
Progress = Callable[[str, int, int], None]


def sqlite_path(url: str) -> Path:
    return Path(url[len("sqlite:///") :])


def _sqlite_has_tables(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()
        return bool(row[0])
    except sqlite3.DatabaseError as exc:
        raise TargetNotEmpty(f"{path} exists and is not an empty SQLite store ({exc})") from exc
    finally:
        conn.close()


def check(url: str) -> None:
    """Refuse, before any backup is read, a target that cannot be written: a URL that is
    not a store URL, a SQLite file whose folder does not exist (a typo must not create
    folders), a PostgreSQL server that does not answer."""
    try:
        url = normalize_url(check_url(url))
    except ValueError as exc:
        raise BackupError(f"restore target: {exc}") from None
    if is_postgres(url):
        engine = make_engine(url)
        try:
            with engine.connect():
                pass
        except DBAPIError as exc:
            raise BackupError(
                f"cannot reach restore target {describe(url)}: {db_error_line(exc)}"
            ) from None
        finally:
            engine.dispose()
        return
    folder = sqlite_path(url).parent
    if not folder.is_dir():
        raise BackupError(
            f"restore target {describe(url)}: folder {folder} does not exist; create it first"
        )


def write(
    url: str,
    loaded: Loaded,
    *,
    site: str,
    force: bool = False,
    progress: Progress | None = None,
) -> None:
    check(url)
    url = normalize_url(url)
    if is_postgres(url):
        _write_postgres(url, loaded, site, force, progress)
    else:
        _write_sqlite(sqlite_path(url), loaded, site, force, progress)


def _refuse(where: str) -> TargetNotEmpty:
    return TargetNotEmpty(
        f"restore target {where} is not empty; restore into an empty store, "
        "or pass --force to replace it"
    )


def _write_sqlite(
    path: Path, loaded: Loaded, site: str, force: bool, progress: Progress | None
) -> None:
    if _sqlite_has_tables(path) and not force:
        raise _refuse(str(path))
    tmp = path.with_name(f".{path.name}.restoring-{secrets.token_hex(4)}")
    # The temp file is invisible until renamed, so it needs no journal while loading;
    # it is fsynced before the rename (the store's engine turns WAL on at next open).
    engine = create_engine(f"sqlite:///{tmp}")

    @event.listens_for(engine, "connect")
    def _fast(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA journal_mode=OFF")
        dbapi_conn.execute("PRAGMA synchronous=OFF")

    try:
        with gc_paused(), engine.begin() as conn:
            fill(conn, loaded, site, progress)
        engine.dispose()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        for stale in ("-wal", "-shm", "-journal"):
            Path(str(path) + stale).unlink(missing_ok=True)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        engine.dispose()
        for leftover in ("", "-wal", "-shm", "-journal"):
            Path(str(tmp) + leftover).unlink(missing_ok=True)


def _write_postgres(
    url: str, loaded: Loaded, site: str, force: bool, progress: Progress | None
) -> None:
    engine = make_engine(url)
    try:
        with gc_paused(), engine.begin() as conn:
            existing = inspect(conn).get_table_names()
            if existing:
                if not force:
                    raise _refuse(describe(url))
                metadata.drop_all(conn)
                conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
            fill(conn, loaded, site, progress)
    finally:
        engine.dispose()


def _stamp(conn: Connection) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    MigrationContext.configure(conn).stamp(ScriptDirectory.from_config(cfg), "head")


def _bulk(conn: Connection, table: Table, columns: list[str], rows: list[list[Any]]) -> None:
    """Insert rows through the driver: COPY on PostgreSQL, executemany on SQLite."""
    known = [i for i, c in enumerate(columns) if c in table.c]
    if len(known) < len(columns):  # a column this schema no longer has
        columns = [columns[i] for i in known]
        rows = [[r[i] for i in known] for r in rows]
    quoted = ", ".join(f'"{c}"' for c in columns)
    dbapi: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with dbapi.cursor() as cur, cur.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as cp:
            for r in rows:
                cp.write_row(r)
        return
    marks = ", ".join("?" for _ in columns)
    cur = dbapi.cursor()
    try:
        cur.executemany(f'INSERT INTO "{table.name}" ({quoted}) VALUES ({marks})', rows)  # noqa: S608 - names from the schema
    finally:
        cur.close()


def fill(conn: Connection, loaded: Loaded, site: str, progress: Progress | None = None) -> None:
    """Create the schema and load snapshot rows and replayed records on one connection."""
    # Tables first, secondary indexes after the bulk load (much faster to build at once).
    for t in metadata.sorted_tables:
        conn.execute(CreateTable(t))
    _stamp(conn)
    snap = loaded.snapshot
    total = sum(snap.counts().values()) + len(loaded.records)
    done = 0
    for table in SNAPSHOT_TABLES:
        part = snap.tables.get(table.name)
        if part is None:
            continue
        for i in range(0, len(part.rows), BATCH):
            chunk = part.rows[i : i + BATCH]
            _bulk(conn, table, part.columns, chunk)
            done += len(chunk)
            if progress:
                progress("write", done, total)
    for t in metadata.sorted_tables:
        for idx in t.indexes:
            conn.execute(CreateIndex(idx))
    history = snap.tables.get("timeline_history")
    known_epochs = {int(r["epoch"]) for r in history.dicts()} if history else set()
    log_rows: list[dict[str, Any]] = []
    for rec in loaded.records:
        apply_row(conn, rec)
        log_rows.append(rec.to_dict())
        if rec.epoch not in known_epochs:
            known_epochs.add(rec.epoch)
            conn.execute(
                insert(timeline_history).values(
                    epoch=rec.epoch,
                    start_lsn=rec.lsn,
                    site=rec.site,
                    created_at=rec.committed_at,
                    reason="seen in archived segments during restore",
                )
            )
        if len(log_rows) >= BATCH:
            conn.execute(insert(change_log), log_rows)
            done += len(log_rows)
            log_rows = []
            if progress:
                progress("write", done, total)
    if log_rows:
        conn.execute(insert(change_log), log_rows)
    meta = {
        "site": site,
        "role": "primary",
        "epoch": str(max(loaded.epoch, snap.head.epoch, 1)),
        "restored_from": json.dumps(
            {"set": loaded.set["id"], "lsn": loaded.lsn, "at": now_us()}, sort_keys=True
        ),
    }
    if snap.checkpoint:
        meta["checkpoint"] = snap.checkpoint
    conn.execute(insert(store_meta), [{"name": k, "value": v} for k, v in meta.items()])
    if progress:
        progress("write", total, total)
