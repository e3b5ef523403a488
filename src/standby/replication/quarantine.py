"""The quarantine table: records a rejoining old primary held that the new primary never got.

Nothing there is ever deleted: an entry is ``pending`` until an operator re-applies it
on the current primary (``reapplied``) or decides it must not come back (``dismissed``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update

from standby.store import Record, Store, now_us
from standby.store.schema import quarantine

STATUSES = ("pending", "reapplied", "dismissed")
# What an operator reviewing a rejoin asks first: which users, sessions, keys, audit events.
HEADLINE = ("users", "sessions", "signing_keys", "audit_events", "refresh_tokens", "tenants")


def summarize(records: Iterable[Record]) -> dict[str, Any]:
    """A report of diverged records by entity: counts, keys, time range. Pure."""
    by_entity: dict[str, dict[str, Any]] = {}
    first = last = None
    n = 0
    for rec in records:
        n += 1
        first = rec.committed_at if first is None else min(first, rec.committed_at)
        last = rec.committed_at if last is None else max(last, rec.committed_at)
        e = by_entity.setdefault(rec.entity, {"records": 0, "ops": {}, "keys": []})
        e["records"] += 1
        e["ops"][rec.op] = e["ops"].get(rec.op, 0) + 1
        if rec.key not in e["keys"]:
            e["keys"].append(rec.key)
    ordered = dict(sorted(by_entity.items(), key=lambda kv: (kv[0] not in HEADLINE, kv[0])))
    return {
        "records": n,
        "first_committed_at": first,
        "last_committed_at": last,
        "by_entity": ordered,
    }


def put(conn: Connection, fork_lsn: int, records: Sequence[Record]) -> None:
    at = now_us()
    for rec in records:
        conn.execute(
            insert(quarantine).values(
                quarantined_at=at,
                divergence_lsn=fork_lsn,
                lsn=rec.lsn,
                epoch=rec.epoch,
                record=rec.to_json(),
                status="pending",
            )
        )


def _row(r: Any) -> dict[str, Any]:
    rec = Record.from_dict(json.loads(r.record))
    return {
        "id": r.id,
        "quarantined_at": r.quarantined_at,
        "divergence_lsn": r.divergence_lsn,
        "lsn": r.lsn,
        "epoch": r.epoch,
        "status": r.status,
        "resolved_at": r.resolved_at,
        "tenant": rec.tenant,
        "entity": rec.entity,
        "key": rec.key,
        "op": rec.op,
        "committed_at": rec.committed_at,
        "record": rec.to_dict(),
    }


def record_of(entry: dict[str, Any]) -> Record:
    return Record.from_dict(entry["record"])


def entries(
    store: Store, status: str | None = None, ids: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    q = select(quarantine).order_by(quarantine.c.id)
    if status:
        q = q.where(quarantine.c.status == status)
    if ids is not None:
        q = q.where(quarantine.c.id.in_(list(ids)))
    with store.read() as conn:
        return [_row(r) for r in conn.execute(q)]


def resolve(store: Store, ids: Sequence[int], status: str) -> int:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    with store.engine.begin() as conn:
        return int(
            conn.execute(
                update(quarantine)
                .where(quarantine.c.id.in_(list(ids)))
                .values(status=status, resolved_at=now_us())
            ).rowcount
        )
