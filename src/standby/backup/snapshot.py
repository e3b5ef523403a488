"""A consistent snapshot of the store: every replicated table, the change log and the
timeline history, read in one transaction (REPEATABLE READ on PostgreSQL; one WAL read
transaction on SQLite), serialized as NDJSON.

Stream: a first line ``{"snapshot": 1, "head": {...}, ...}``; then for each table a line
``{"table": NAME, "columns": [...]}`` followed by one JSON array per row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, select

from standby.store import Head, Store
from standby.store.schema import REPLICATED_TABLES, change_log, store_meta, timeline_history

SNAPSHOT_TABLES: list[Table] = [timeline_history, *REPLICATED_TABLES.values(), change_log]
FETCH = 10000


@dataclass
class Snapshot:
    """A decoded snapshot: its head position and rows per table (as dicts)."""

    head: Head
    checkpoint: str | None
    site: str
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.rows.items()}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _table_lines(conn: Connection, table: Table, counts: dict[str, int]) -> Iterator[str]:
    cols = [c.name for c in table.c]
    yield _dumps({"table": table.name, "columns": cols})
    order = table.c.lsn if table is change_log else list(table.primary_key.columns)[0]
    result = conn.execute(select(table).order_by(order).execution_options(yield_per=FETCH))
    n = 0
    for row in result:
        n += 1
        yield _dumps(list(row))
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
    return ("\n".join(lines) + "\n").encode(), head, counts


def parse(data: bytes, tenant: str | None = None) -> Snapshot:
    """Decode a snapshot; with ``tenant``, keep that tenant's rows and global (NULL) rows."""
    lines = iter(data.decode().splitlines())
    first = json.loads(next(lines))
    if first.get("snapshot") != 1:
        raise ValueError("not a Standby snapshot")
    snap = Snapshot(Head(**first["head"]), first.get("checkpoint"), str(first["site"]))
    cols: list[str] = []
    rows: list[dict[str, Any]] = []
    tenant_ix: int | None = None
    for line in lines:
        if line.startswith("{"):
            header = json.loads(line)
            cols = header["columns"]
            rows = snap.rows.setdefault(header["table"], [])
            tenant_ix = cols.index("tenant") if (tenant and "tenant" in cols) else None
            continue
        values = json.loads(line)
        if tenant_ix is not None and values[tenant_ix] not in (tenant, None):
            continue
        rows.append(dict(zip(cols, values, strict=True)))
    return snap


__all__ = ["SNAPSHOT_TABLES", "Snapshot", "parse", "store_meta", "take"]
