"""Rejoin: a returning old primary quarantines what diverged, rewinds, then follows.

The new primary's history says epoch E+1 started at LSN S. Every record we hold at
S or later was never on the new timeline: it is copied to the quarantine table with a
report, each row it touched is rebuilt from our own log as it stood at S-1 (or removed
if it did not exist then), and the diverged records leave the change log. All of
that is one transaction: a crash midway leaves the store as it was.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select

from standby.replication import quarantine
from standby.replication.timeline import adopt
from standby.store import Record, Store, StoreError
from standby.store.schema import REPLICATED_TABLES, change_log
from standby.store.store import apply_row

log = logging.getLogger("standby.replication.rejoin")


class RejoinError(StoreError):
    """The rewind cannot be done safely; nothing was changed."""


@dataclass(frozen=True)
class RowRewind:
    entity: str
    key: str
    prior: Record | None  # the row's last image before the fork; None: it did not exist


def plan(
    diverged: Sequence[Record], prior: Mapping[tuple[str, str], Record | None]
) -> list[RowRewind]:
    """One action per row the diverged records touched, in first-touched order. Pure."""
    seen: dict[tuple[str, str], RowRewind] = {}
    for rec in diverged:
        k = (rec.entity, rec.key)
        if k not in seen:
            seen[k] = RowRewind(rec.entity, rec.key, prior.get(k))
    return list(seen.values())


def _prior(conn: Connection, entity: str, key: str, fork: int) -> Record | None:
    row = (
        conn.execute(
            select(change_log)
            .where(change_log.c.entity == entity, change_log.c.key == key, change_log.c.lsn < fork)
            .order_by(change_log.c.lsn.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return None if row is None else Record.from_dict(dict(row))


def _oldest_lsn(conn: Connection) -> int | None:
    row = conn.execute(select(change_log.c.lsn).order_by(change_log.c.lsn).limit(1)).first()
    return None if row is None else int(row[0])


def rewind(
    store: Store,
    fork: int,
    timeline: Sequence[Mapping[str, Any]],
    epoch: int,
    primary_url: str,
) -> dict[str, Any]:
    """Quarantine records >= fork, rewind rows, become a standby of ``primary_url``."""
    conn = store.engine.connect()
    if not store.is_postgres:
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
    try:
        with conn.begin():
            diverged = [
                Record.from_dict(dict(r))
                for r in conn.execute(
                    select(change_log).where(change_log.c.lsn >= fork).order_by(change_log.c.lsn)
                ).mappings()
            ]
            oldest = _oldest_lsn(conn)
            trimmed = oldest is not None and oldest > 1
            prior = {(r.entity, r.key): _prior(conn, r.entity, r.key, fork) for r in diverged}
            actions = plan(diverged, prior)
            for act in actions:
                first_op = next(
                    r.op for r in diverged if (r.entity, r.key) == (act.entity, act.key)
                )
                if act.prior is None and trimmed and first_op != "insert":
                    raise RejoinError(
                        f"cannot rewind {act.entity} {act.key!r}: its state before lsn {fork} "
                        "is older than this site's log; restore it from a backup instead"
                    )
            quarantine.put(conn, fork, diverged)
            # Delete every touched row first, then restore images, so a restored row
            # never collides with a diverged one on a unique column.
            for act in actions:
                table = REPLICATED_TABLES[act.entity]
                conn.execute(delete(table).where(table.c.id == act.key))
            for act in actions:
                if act.prior is not None and act.prior.op != "delete":
                    apply_row(conn, act.prior)
            conn.execute(delete(change_log).where(change_log.c.lsn >= fork))
            adopt(conn, timeline)
            store._set_meta(conn, "role", "standby")
            store._set_meta(conn, "epoch", str(epoch))
            store._set_meta(conn, "primary_url", primary_url)
            store._set_meta(conn, "fenced", "")
    finally:
        conn.close()
    report = quarantine.summarize(diverged)
    report["divergence_lsn"] = fork
    report["rows_rewound"] = len(actions)
    log.warning(json.dumps({"event": "rejoin_quarantined", **report}, default=str))
    return report
