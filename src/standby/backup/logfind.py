"""Finding events in the change log (e.g. the first of many user deletes) so a restore
can stop just before them. Works on the live store or on the archived segments."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import select

from standby.backup import segments
from standby.backup.context import Backups
from standby.backup.load import fetch_object
from standby.backup.manifest import ObjectRef
from standby.backup.plan import format_us
from standby.store import Record, Store
from standby.store.schema import change_log


def from_store(
    store: Store, entity: str | None, op: str | None, since_us: int | None, tenant: str | None
) -> Iterator[dict[str, Any]]:
    cl = change_log
    q = select(
        cl.c.lsn,
        cl.c.txn,
        cl.c.epoch,
        cl.c.committed_at,
        cl.c.tenant,
        cl.c.entity,
        cl.c.key,
        cl.c.op,
    )
    if entity:
        q = q.where(cl.c.entity == entity)
    if op:
        q = q.where(cl.c.op == op)
    if since_us is not None:
        q = q.where(cl.c.committed_at >= since_us)
    if tenant:
        q = q.where(cl.c.tenant == tenant)
    with store.read() as conn:
        for row in conn.execute(q.order_by(cl.c.lsn).execution_options(yield_per=5000)):
            yield dict(row._mapping)


def from_archive(
    backups: Backups, entity: str | None, op: str | None, since_us: int | None, tenant: str | None
) -> Iterator[dict[str, Any]]:
    for seg in backups.catalog.segments():
        sm = backups.catalog.read_manifest(seg.manifest_name)
        if since_us is not None and int(sm["last_time"]) < since_us:
            continue
        recs = segments.decode(fetch_object(backups, ObjectRef.from_dict(sm["objects"][0])))
        yield from _match(recs, entity, op, since_us, tenant)


def _match(
    recs: Iterable[Record],
    entity: str | None,
    op: str | None,
    since: int | None,
    tenant: str | None,
) -> Iterator[dict[str, Any]]:
    for r in recs:
        if (
            (entity is None or r.entity == entity)
            and (op is None or r.op == op)
            and (since is None or r.committed_at >= since)
            and (tenant is None or r.tenant == tenant)
        ):
            yield {
                "lsn": r.lsn,
                "txn": r.txn,
                "epoch": r.epoch,
                "committed_at": r.committed_at,
                "tenant": r.tenant,
                "entity": r.entity,
                "key": r.key,
                "op": r.op,
            }


def summarize(matches: Iterable[dict[str, Any]], first_only: bool) -> dict[str, Any]:
    """Group matches by transaction: a mass delete shows as one big transaction."""
    txns: dict[int, dict[str, Any]] = {}
    total = 0
    first: dict[str, Any] | None = None
    for m in matches:
        total += 1
        if first is None:
            first = m
            if first_only:
                break
        t = txns.setdefault(
            int(m["txn"]),
            {
                "txn": m["txn"],
                "first_lsn": m["lsn"],
                "last_lsn": m["lsn"],
                "count": 0,
                "committed_at": m["committed_at"],
                "time": format_us(int(m["committed_at"])),
            },
        )
        t["last_lsn"] = m["lsn"]
        t["count"] += 1
    out: dict[str, Any] = {"matches": total, "first": first, "transactions": list(txns.values())}
    if first is not None:
        first["time"] = format_us(int(first["committed_at"]))
        # Restoring to the LSN before the first match's transaction keeps it whole out.
        out["restore_before"] = int(first["txn"]) - 1
    return out
