"""The standby's applier: pull the primary's stream, apply whole transactions, ack.

The position is the local log itself (its head LSN); with a tenant filter, the LSN the
primary has scanned for us is kept in store meta as well, since filtered records leave
gaps. Reconnects with capped exponential backoff; never applies a batch it could not
read completely and verify.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import httpx

from standby.httpclient import service_client
from standby.replication import catchup, epochs, issuer_match
from standby.replication.catchup import CatchupError
from standby.replication.client import PeerError, error_of, headers, primary_url
from standby.replication.framing import Heartbeat, StreamError, decode
from standby.replication.state import FollowerProgress, state_of
from standby.replication.timeline import adopt_timeline
from standby.server import Site
from standby.store import ApplyError, Record

log = logging.getLogger("standby.replication.applier")

POSITION_META = "replication_position"
READ_TIMEOUT = 4.0  # > 3 heartbeats: a primary silent this long is gone
# An async primary only uses acks for lag and status: spare it one request per batch.
ASYNC_ACK_INTERVAL = 0.05
MAX_BACKOFF = 2.0


class Stop(Exception):
    """This site stopped being a standby while applying (promoted or told to follow)."""


def position(site: Site) -> int:
    head = site.store.head().lsn
    scanned = int(site.store.get_meta(POSITION_META) or 0)
    return max(head, scanned) if site.settings.replication.tenants else head


def apply_batch(site: Site, records: list[Record], through: int) -> None:
    """Apply received records in one transaction (blocking; runs in a worker thread)."""
    state = state_of(site)
    filtered = site.settings.replication.tenants is not None
    with state.apply_lock:
        if site.role != "standby":
            raise Stop()
        if records:
            # Filtered streams have LSN gaps: check each record's own hash and order
            # instead of the chain link (done in Store.apply and in the reader).
            head = site.store.apply(records, check_chain=not filtered)
            state.follower.applied_lsn = head.lsn
            state.follower.applied_committed_at = head.committed_at
            state.follower.applied_records += len(records)
        if filtered and through > int(site.store.get_meta(POSITION_META) or 0):
            site.store.set_meta(POSITION_META, str(through))


def _event(name: str, **fields: object) -> None:
    log.info(json.dumps({"event": name, **fields}))


class Acker:
    """Sends our position to the primary beside the apply loop, one request at a time,
    always the newest position: receiving the next batch never waits for an ack."""

    def __init__(self, site: Site, client: httpx.AsyncClient, url: str) -> None:
        self.site, self.client, self.url = site, client, url
        self.lsn = -1
        self.sync = False
        self.wanted = asyncio.Event()
        self.error: PeerError | httpx.HTTPError | None = None

    def want(self, lsn: int, sync: bool) -> None:
        self.lsn, self.sync = max(self.lsn, lsn), sync
        self.wanted.set()

    async def run(self) -> None:
        while True:
            await self.wanted.wait()
            self.wanted.clear()
            try:
                resp = await self.client.post(
                    f"{self.url}/replication/ack",
                    json={"site": self.site.name, "lsn": self.lsn, "epoch": self.site.epoch},
                    headers=headers(self.site),
                )
            except httpx.HTTPError as exc:
                self.error = exc
                return
            if resp.status_code != 200:
                self.error = error_of(self.url, resp)
                return
            if not self.sync:
                await asyncio.sleep(ASYNC_ACK_INTERVAL)


async def _refused(site: Site, url: str, err: PeerError) -> None:
    """A refused stream: adopt a newer timeline when nothing diverged, else say what to do."""
    body = err.body
    if err.status == 410 and isinstance(body.get("oldest_lsn"), int):
        applied = await asyncio.to_thread(catchup.from_archive, site, body["oldest_lsn"])
        _event("caught_up_from_archive", site=site.name, records=applied, primary=url)
        return
    if err.status == 409 and body.get("error") == "stale_epoch" and "timeline" in body:
        timeline = body["timeline"]
        fork = epochs.divergence_lsn(site.epoch, timeline)
        head = await asyncio.to_thread(site.store.head)
        if fork is None or head.lsn < fork:
            newest = epochs.newest_epoch(timeline)
            await asyncio.to_thread(adopt_timeline, site.store, timeline)
            await asyncio.to_thread(site.set_role, "standby", newest)
            _event("epoch_adopted", site=site.name, epoch=newest, primary=url)
            return
        raise PeerError(
            f"{err}; this standby holds records from lsn {fork} on that the primary does not "
            "have: rejoin with POST /replication/follow (quarantines them)",
            err.status,
            body,
        )
    raise err


async def follow_once(site: Site, client: httpx.AsyncClient, url: str) -> None:
    """One connection to the primary's stream; returns or raises when it ends."""
    progress = state_of(site).follower
    progress.primary_url = url
    after = await asyncio.to_thread(position, site)
    params: dict[str, str | int] = {"after": after, "epoch": site.epoch, "site": site.name}
    tenants = site.settings.replication.tenants
    if tenants is not None:
        params["tenants"] = ",".join(tenants)
    async with client.stream(
        "GET", f"{url}/replication/stream", params=params, headers=headers(site)
    ) as resp:
        if resp.status_code != 200:
            await resp.aread()
            await _refused(site, url, error_of(url, resp))
            return
        tl = await client.get(f"{url}/replication/timeline", headers=headers(site))
        if tl.status_code == 200:
            await asyncio.to_thread(adopt_timeline, site.store, tl.json()["timeline"])
        await issuer_match.learn(site, client, url)
        progress.connected, progress.last_error = True, None
        _event("stream_connected", site=site.name, primary=url, after=after)
        acker = Acker(site, client, url)
        acking = asyncio.create_task(acker.run())
        try:
            await _consume(site, acker, resp, after, progress)
        finally:
            acking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acking


async def _consume(
    site: Site,
    acker: Acker,
    resp: httpx.Response,
    after: int,
    progress: FollowerProgress,
) -> None:
    batch_limit = 50 * site.settings.replication.batch_size
    buffer: list[Record] = []
    last_lsn = after
    async for line in resp.aiter_lines():
        if site.role != "standby":
            return  # promoted (or rejoining): stop following at once
        if not line.strip():
            continue
        item = decode(line)
        progress.last_contact = time.monotonic()
        if isinstance(item, Record):
            if item.lsn <= last_lsn:
                raise StreamError(f"record {item.lsn} is out of order after {last_lsn}")
            last_lsn = item.lsn
            buffer.append(item)
            if len(buffer) > batch_limit:
                raise StreamError(f"over {batch_limit} records without a batch end")
            continue
        if item.epoch != site.epoch:
            raise StreamError(f"primary switched to epoch {item.epoch} mid-stream")
        if item.through_lsn < last_lsn:
            raise StreamError(f"heartbeat through {item.through_lsn} before record {last_lsn}")
        if acker.error is not None:
            raise acker.error
        await _land(site, acker, buffer, item, progress)
        buffer = []


async def _land(
    site: Site,
    acker: Acker,
    batch: list[Record],
    beat: Heartbeat,
    progress: FollowerProgress,
) -> None:
    """Apply a complete batch, record what the primary told us, acknowledge."""
    moved = bool(batch) or beat.through_lsn > progress.position
    if moved:
        await asyncio.to_thread(apply_batch, site, batch, beat.through_lsn)
    progress.position = max(progress.position, beat.through_lsn)
    progress.primary_head_lsn = beat.head_lsn
    progress.primary_head_committed_at = beat.head_committed_at
    progress.primary_epoch = beat.epoch
    progress.pending_bytes = beat.pending_bytes
    if moved or progress.position >= beat.head_lsn:
        acker.want(progress.position, beat.sync)


async def run(site: Site) -> None:
    """Background task: follow the primary whenever this site is a standby."""
    state = state_of(site)
    state.wake_applier = asyncio.Event()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per ack is noise
    progress = state.follower
    with contextlib.suppress(Exception):
        head = await asyncio.to_thread(site.store.head)
        progress.applied_lsn, progress.applied_committed_at = head.lsn, head.committed_at
        progress.position = await asyncio.to_thread(position, site)
    backoff = 0.1
    timeout = httpx.Timeout(5.0, read=READ_TIMEOUT)
    async with service_client(timeout=timeout) as client:
        while True:
            url = await asyncio.to_thread(primary_url, site) if site.role == "standby" else None
            if url is None:
                progress.connected = False
                state.wake_applier.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(state.wake_applier.wait(), 1.0)
                continue
            try:
                await follow_once(site, client, url)
                backoff = 0.1
            except Stop:
                _event("applier_stopped", site=site.name, role=site.role)
            except (
                StreamError,
                ApplyError,
                CatchupError,
                PeerError,
                httpx.HTTPError,
                ValueError,
            ) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if reason != progress.last_error:
                    log.error(
                        json.dumps(
                            {"event": "replication_error", "site": site.name, "error": reason}
                        )
                    )
                progress.last_error = reason
                if isinstance(exc, StreamError | ApplyError):
                    progress.rejected_batches += 1
            progress.connected = False
            state.wake_applier.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.wake_applier.wait(), backoff)
            backoff = min(MAX_BACKOFF, backoff * 2)
