"""Timeline history rows: read, record a promotion, adopt a primary's history.

timeline_history is not in the change log (it is per-site bookkeeping the store
creates), so it travels over the replication API instead: the applier copies the
primary's history when it connects, and a rejoining site reads the new primary's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from standby.store import Store, now_us
from standby.store.schema import timeline_history


def read_timeline(store: Store) -> list[dict[str, Any]]:
    return store.timeline()


def _put(conn: Connection, row: Mapping[str, Any]) -> None:
    conn.execute(delete(timeline_history).where(timeline_history.c.epoch == int(row["epoch"])))
    conn.execute(
        insert(timeline_history).values(
            epoch=int(row["epoch"]),
            start_lsn=int(row["start_lsn"]),
            site=str(row["site"]),
            created_at=int(row.get("created_at") or now_us()),
            reason=row.get("reason"),
        )
    )


def adopt(conn: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
    """Make our history hold the primary's rows (theirs win for any epoch both have)."""
    for row in rows:
        _put(conn, row)


def adopt_timeline(store: Store, rows: Iterable[Mapping[str, Any]]) -> None:
    rows = list(rows)
    with store.engine.begin() as conn:
        have = {
            (r.epoch, r.start_lsn, r.site)
            for r in conn.execute(select(timeline_history)).fetchall()
        }
        adopt(conn, [r for r in rows if (r["epoch"], r["start_lsn"], r["site"]) not in have])


def record_promotion(conn: Connection, epoch: int, start_lsn: int, site: str, reason: str) -> None:
    _put(
        conn,
        {
            "epoch": epoch,
            "start_lsn": start_lsn,
            "site": site,
            "created_at": now_us(),
            "reason": reason,
        },
    )
