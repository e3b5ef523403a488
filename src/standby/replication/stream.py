"""GET /replication/stream on the primary: the change log as long-lived NDJSON.

Records go out in whole transactions, as soon as they commit (a commit hook wakes
the stream), followed by a heartbeat line; an idle stream sends a heartbeat every
second so the standby can tell a quiet primary from a dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from fastapi import Depends, Query
from fastapi.responses import StreamingResponse

from standby.errors import ApiError
from standby.replication import epochs
from standby.replication.auth import require_replication
from standby.replication.fencing import fence
from standby.replication.framing import Heartbeat, complete_prefix, encode
from standby.replication.lag import unacked
from standby.replication.state import state_of
from standby.replication.timeline import read_timeline
from standby.server import Site
from standby.store import Head, Record, Store, now_us

log = logging.getLogger("standby.replication.stream")

HEARTBEAT_SECONDS = 1.0


def parse_tenants(raw: str | None) -> list[str] | None:
    if raw is None or not raw.strip():
        return None
    return sorted({t.strip() for t in raw.split(",") if t.strip()})


@dataclass(frozen=True)
class Batch:
    records: list[Record]
    through: int  # the scan covered every LSN up to here (filtered streams skip some)
    head: Head  # the primary's head as of this batch
    full: bool  # cut by the size limit: more is waiting


def read_batch(store: Store, after: int, limit: int, tenants: Sequence[str] | None) -> Batch:
    """Whole transactions after ``after``, and how far the scan got."""
    head = store.head()
    size = limit
    for _ in range(32):  # a transaction bigger than limit * 2**31 records does not exist
        recs = store.records_after(after, limit=size, tenants=tenants)
        full = len(recs) == size
        ready = complete_prefix(recs, full)
        if ready or not recs:
            through = ready[-1].lsn if full else max(head.lsn, ready[-1].lsn if ready else 0)
            if ready and ready[-1].lsn > head.lsn:  # committed after we read the head
                last = ready[-1]
                head = Head(last.lsn, last.hash, last.epoch, last.committed_at)
            return Batch(ready, max(through, after), head, full)
        size *= 2
    raise RuntimeError("transaction too large to stream")


def chunk(
    store: Store, after: int, limit: int, tenants: Sequence[str] | None, epoch: int, sync: bool
) -> tuple[bytes, Batch]:
    """The next batch as NDJSON bytes, closed by a heartbeat (one worker-thread call)."""
    batch = read_batch(store, after, limit, tenants)
    pending = unacked(store, batch.through, tenants)[0] if batch.full else 0
    beat = Heartbeat(
        batch.head.lsn, batch.head.committed_at, epoch, now_us(), batch.through, pending, sync
    )
    return b"".join(encode(r) for r in batch.records) + encode(beat), batch


def primary_hint(site: Site) -> str:
    url = site.store.get_meta("primary_url") or site.settings.replication.primary_url
    return f"; its primary is {url}" if url else ""


def check_request(site: Site, epoch: int, after: int) -> None:
    """Refuse what this site must not serve; raise ApiError saying why and what to do."""
    if site.role != "primary":
        raise ApiError(
            503,
            "not_primary",
            f"site {site.name!r} is a {site.role}, not a primary: point the standby at the "
            f"primary{primary_hint(site)}",
            headers={"Retry-After": "1"},
            role=site.role,
        )
    verdict = epochs.compare(site.epoch, epoch)
    if verdict == "caller_higher":
        fence(site, f"a standby streaming on epoch {epoch}, newer than this site's {site.epoch}")
        raise ApiError(
            409,
            "stale_epoch",
            f"site {site.name!r} is on epoch {site.epoch}, behind the caller's {epoch}; "
            "it is fenced and accepts no writes",
            epoch=site.epoch,
        )
    if verdict == "caller_lower":
        raise ApiError(
            409,
            "stale_epoch",
            f"caller is on epoch {epoch}, this primary on {site.epoch}: the caller must "
            "rejoin (POST /replication/follow) before streaming",
            epoch=site.epoch,
            timeline=read_timeline(site.store),
        )
    head = site.store.head()
    if after > head.lsn:
        raise ApiError(
            409,
            "diverged",
            f"caller is at lsn {after}, past this primary's head {head.lsn}: it holds records "
            "this primary never had and must rejoin (POST /replication/follow)",
            epoch=site.epoch,
            head_lsn=head.lsn,
        )
    oldest = site.store.oldest_lsn()
    if after < oldest - 1:
        raise ApiError(
            410,
            "gone",
            f"records after lsn {after} are no longer in this primary's log (oldest is "
            f"{oldest}); catch up from the backup archive, then stream from there",
            oldest_lsn=oldest,
        )


async def _records(
    site: Site, after: int, tenants: list[str] | None, peer: str | None
) -> AsyncIterator[bytes]:
    state = state_of(site)
    wake = state.signal.register()
    position = after
    if peer:
        p = state.peer(peer)
        p.connected, p.tenants = True, tenants
    last_sent = 0.0
    limit = site.settings.replication.batch_size
    sync = site.settings.replication.mode == "sync"
    try:
        while site.role == "primary":
            wake.clear()
            data, batch = await asyncio.to_thread(
                chunk, site.store, position, limit, tenants, site.epoch, sync
            )
            now = time.monotonic()
            if batch.records or batch.through != position or now - last_sent >= HEARTBEAT_SECONDS:
                position = batch.through
                yield data
                last_sent = now
                if batch.full:
                    continue  # behind: send the next batch without waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), HEARTBEAT_SECONDS)
    finally:
        state.signal.unregister(wake)
        if peer:
            state.peer(peer).connected = False


async def stream(
    after: int = Query(ge=0),
    epoch: int = Query(ge=0),
    tenants: str | None = Query(default=None, max_length=4000),
    site_name: str | None = Query(default=None, alias="site", max_length=64),
    site: Site = Depends(require_replication),
) -> StreamingResponse:
    await asyncio.to_thread(check_request, site, epoch, after)
    wanted = parse_tenants(tenants)
    log.info(
        json.dumps({"event": "stream_open", "peer": site_name, "after": after, "tenants": wanted})
    )
    return StreamingResponse(
        _records(site, after, wanted, site_name),
        media_type="application/x-ndjson",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
