"""Small replication endpoints: ack, status, timeline, and re-applying quarantined records."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field

from standby.errors import ApiError
from standby.replication import epochs
from standby.replication.auth import require_replication
from standby.replication.fencing import fence
from standby.replication.reapply import reapply
from standby.replication.state import state_of
from standby.replication.status import report
from standby.replication.timeline import read_timeline
from standby.server import Site
from standby.store import Record


class Ack(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: str = Field(min_length=1, max_length=64)
    lsn: int = Field(ge=0)
    epoch: int = Field(ge=0)


class Reapply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    records: list[dict[str, Any]] = Field(min_length=1, max_length=10000)
    reason: str = Field(default="reconcile", max_length=500)


async def ack(body: Ack, site: Site = Depends(require_replication)) -> dict[str, Any]:
    verdict = epochs.compare(site.epoch, body.epoch)
    if verdict == "caller_higher":
        await asyncio.to_thread(
            fence, site, f"standby {body.site!r} acked on epoch {body.epoch} > ours"
        )
    if verdict != "same":
        raise ApiError(
            409,
            "stale_epoch",
            f"ack from {body.site!r} on epoch {body.epoch}; this site is on {site.epoch}",
            epoch=site.epoch,
        )
    state = state_of(site)
    peer = state.peer(body.site)
    peer.lsn, peer.epoch, peer.acked_at = max(peer.lsn, body.lsn), body.epoch, time.time()
    # A standby following only some tenants cannot confirm the others' writes.
    gate = state.gate
    if gate is not None and peer.tenants is None:
        if gate.degraded or gate.blocked:  # needs the head (store I/O): off the event loop
            await asyncio.to_thread(gate.on_ack, body.lsn, lambda: site.store.head().lsn)
        else:
            gate.on_ack(body.lsn, lambda: site.store.head().lsn)
    return {"epoch": site.epoch, "acked_lsn": peer.lsn}


async def status(site: Site = Depends(require_replication)) -> dict[str, Any]:
    return await asyncio.to_thread(report, site)


async def timeline(site: Site = Depends(require_replication)) -> dict[str, Any]:
    rows = await asyncio.to_thread(read_timeline, site.store)
    return {"site": site.name, "role": site.role, "epoch": site.epoch, "timeline": rows}


async def reapply_records(
    body: Reapply, site: Site = Depends(require_replication)
) -> dict[str, Any]:
    try:
        records = [Record.from_dict(r) for r in body.records]
    except ValueError as exc:
        raise ApiError(400, "invalid_record", str(exc)) from exc
    bad = [r.lsn for r in records if r.hash != r.expected_hash()]
    if bad:
        raise ApiError(400, "invalid_record", f"records {bad} do not match their hashes")
    lsns = await asyncio.to_thread(reapply, site, records)
    return {"site": site.name, "epoch": site.epoch, "lsns": lsns}
