"""A consistent snapshot of the store: every replicated table, the change log and the
timeline history, read in one transaction (REPEATABLE READ on PostgreSQL; one WAL read
transaction on SQLite), serialized as NDJSON.

Stream: a first line ``{"snapshot": 1, "head": {...}, ...}``; then for each table a line
``{"table": NAME, "columns": [...]}`` followed by lines that are each a JSON array of up
to 5000 rows (each row an array in column order).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Boolean, Connection, Table

from standby.store import Head, Store
from standby.store.schema import REPLICATED_TABLES, change_log, timeline_history

SNAPSHOT_TABLES: list[Table] = [timeline_history, *REPLICATED_TABLES.values(), change_log]
CHUNK = 5000  # rows per line: one C-speed json.dumps/loads per chunk, bounded line size


@dataclass
class TableRows:
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


@dataclass
class Snapshot:
    """A decoded snapshot: its head position and the rows of each table."""

    head: Head
    checkpoint: str | None
    site: str
    tables: dict[str, TableRows] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {name: len(t.rows) for name, t in self.tables.items()}


def _dumps(value: Any) -> bytes:
    # orjson: the row chunks dominate backup time; it emits the same compact JSON.
    return orjson.dumps(value)


def _bool_columns(table: Table) -> list[int]:
    return [i for i, c in enumerate(table.c) if isinstance(c.type, Boolean)]


def _table_lines(conn: Connection, table: Table, counts: dict[str, int]) -> Iterator[bytes]:
    """The table's rows through the driver's own cursor (same transaction)."""
    cols = [c.name for c in table.c]
    yield _dumps({"table": table.name, "columns": cols})
    quoted = ", ".join(f'"{c}"' for c in cols)
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    bools = _bool_columns(table)
    n = 0
    try:
        # Storage order: restore does not need PK order, and an index walk costs more.
        cur.execute(f'SELECT {quoted} FROM "{table.name}"')  # noqa: S608 - names from the schema
        while True:
            chunk = cur.fetchmany(CHUNK)
            if not chunk:
                break
            rows: list[Any] = chunk
            if bools:  # SQLite hands booleans back as 0/1
                rows = [list(r) for r in chunk]
                for r in rows:
                    for i in bools:
                        r[i] = None if r[i] is None else bool(r[i])
            n += len(rows)
            yield _dumps(rows)
    finally:
        cur.close()
    counts[table.name] = n


def take(store: Store) -> tuple[bytes, Head, dict[str, int]]:
    """Serialize the whole store in one read transaction; return (bytes, head, row counts)."""
    counts: dict[str, int] = {}
    conn = store.engine.connect()
    if store.is_postgres:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    try:
        with conn.begin():
            # The first read fixes the snapshot; everything after sees the same state.
            head = Store._head(conn)
            checkpoint = Store._meta(conn, "checkpoint")
            lines = [
                _dumps(
                    {
                        "snapshot": 1,
                        "site": store.site,
                        "head": head.__dict__,
                        "checkpoint": checkpoint,
                    }
                )
            ]
            for table in SNAPSHOT_TABLES:
                lines.extend(_table_lines(conn, table, counts))
    finally:
        conn.close()
    lines.append(b"")
    return b"\n".join(lines), head, counts


@contextmanager
def gc_paused() -> Iterator[None]:
    """Millions of row lists would trigger repeated full collections (none are cycles)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def parse(data: bytes, tenant: str | None = None) -> Snapshot:
    """Decode a snapshot; with ``tenant``, keep that tenant's rows and global (NULL) rows."""
    with gc_paused():
        return _parse(data, tenant)


def _parse(data: bytes, tenant: str | None) -> Snapshot:
    lines = iter(data.split(b"\n"))
    first = orjson.loads(next(lines))
    if first.get("snapshot") != 1:
        raise ValueError("not a Standby snapshot")
    snap = Snapshot(Head(**first["head"]), first.get("checkpoint"), str(first["site"]))
    current: TableRows | None = None
    tenant_ix: int | None = None
    for line in lines:
        if not line:
            continue
        if line.startswith(b"{"):
            header = orjson.loads(line)
            current = snap.tables.setdefault(header["table"], TableRows(header["columns"]))
            cols = current.columns
            tenant_ix = cols.index("tenant") if (tenant and "tenant" in cols) else None
            continue
        if current is None:
            raise ValueError("rows before a table header")
        rows = orjson.loads(line)
        if tenant_ix is not None:
            rows = [r for r in rows if r[tenant_ix] in (tenant, None)]
        current.rows.extend(rows)
    return snap


__all__ = ["SNAPSHOT_TABLES", "Snapshot", "TableRows", "parse", "take"]
