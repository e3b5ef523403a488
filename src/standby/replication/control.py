"""Role changes ordered by the controller (or an operator): promote, demote, follow."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field

from standby.errors import ApiError
from standby.httpclient import service_client
from standby.replication import epochs, rejoin
from standby.replication.auth import require_replication
from standby.replication.client import PeerError, error_of, headers
from standby.replication.fencing import fence, fenced_reason, unfence
from standby.replication.state import state_of
from standby.replication.timeline import adopt_timeline, record_promotion
from standby.server import Site

log = logging.getLogger("standby.replication.control")


class RoleOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epoch: int = Field(ge=1)
    reason: str = Field(default="", max_length=500)


class FollowOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    primary_url: str = Field(min_length=1, max_length=500, pattern=r"^https?://")
    epoch: int = Field(ge=1)


def _stale(site: Site, epoch: int, what: str) -> ApiError:
    return ApiError(
        409,
        "stale_epoch",
        f"{what} names epoch {epoch}, but site {site.name!r} is already on epoch {site.epoch}",
        epoch=site.epoch,
    )


def promote_now(site: Site, epoch: int, reason: str) -> dict[str, Any]:
    """Become primary on ``epoch``: record where the new timeline starts, open writes."""
    state = state_of(site)
    with state.apply_lock:  # no batch lands between reading the head and switching role
        current = site.store.timeline()
        if site.role == "primary" and epoch == site.epoch and not fenced_reason(site):
            mine = [r for r in current if r["epoch"] == epoch]
            start = mine[0]["start_lsn"] if mine else site.store.head().lsn + 1
            return {"site": site.name, "epoch": epoch, "start_lsn": start, "changed": False}
        if epoch <= site.epoch:
            raise _stale(site, epoch, "promotion")
        if site.settings.replication.tenants is not None:
            raise ApiError(
                409,
                "partial_replica",
                f"site {site.name!r} follows only tenants {site.settings.replication.tenants}; "
                "promoting it would lose the others",
            )
        start_lsn = site.store.head().lsn + 1
        with site.store.engine.begin() as conn:
            record_promotion(conn, epoch, start_lsn, site.name, reason or "promoted")
        unfence(site)
        site.set_role("primary", epoch)
    if state.gate is not None:
        state.gate.acked_lsn = 0
    log.warning(
        json.dumps(
            {
                "event": "promoted",
                "site": site.name,
                "epoch": epoch,
                "start_lsn": start_lsn,
                "reason": reason,
            }
        )
    )
    return {"site": site.name, "epoch": epoch, "start_lsn": start_lsn, "changed": True}


async def promote(order: RoleOrder, site: Site = Depends(require_replication)) -> dict[str, Any]:
    return await asyncio.to_thread(promote_now, site, order.epoch, order.reason)


async def demote(order: RoleOrder, site: Site = Depends(require_replication)) -> dict[str, Any]:
    if order.epoch < site.epoch:
        raise _stale(site, order.epoch, "demotion")
    await asyncio.to_thread(fence, site, order.reason or f"demoted (epoch {order.epoch})")
    head = await asyncio.to_thread(site.store.head)
    return {"site": site.name, "epoch": site.epoch, "fenced": True, "head_lsn": head.lsn}


async def _primary_facts(site: Site, url: str) -> dict[str, Any]:
    try:
        async with service_client(timeout=5.0) as client:
            resp = await client.get(f"{url}/replication/status", headers=headers(site))
    except httpx.HTTPError as exc:
        raise ApiError(502, "primary_unreachable", f"cannot reach {url}: {exc}") from exc
    if resp.status_code != 200:
        err: PeerError = error_of(url, resp)
        raise ApiError(502, "primary_refused", str(err))
    facts: dict[str, Any] = resp.json()
    return facts


def follow_now(site: Site, url: str, facts: dict[str, Any]) -> dict[str, Any]:
    """Quarantine and rewind what diverged (if anything), then become a standby of url."""
    state = state_of(site)
    epoch = int(facts["epoch"])
    timeline = facts.get("timeline") or []
    with state.apply_lock:
        was_role, was_fenced = site.role, fenced_reason(site)
        fence(site, f"rejoining as a standby of {url}")
        site.role = "standby"  # streams we serve end, the write path refuses at once
        fork = epochs.divergence_lsn(site.epoch, timeline)
        head = site.store.head()
        report: dict[str, Any] = {"records": 0, "divergence_lsn": fork}
        try:
            if fork is not None and head.lsn >= fork:
                report = rejoin.rewind(site.store, fork, timeline, epoch, url)
            else:
                adopt_timeline(site.store, timeline)
                site.store.set_meta("primary_url", url)
        except Exception as exc:
            # The rewind rolled back: the data is as it was, but a newer primary exists,
            # so this site stays fenced until an operator sorts it out.
            site.role = was_role
            fence(site, was_fenced or f"rejoin with {url} failed: {exc}")
            raise
        unfence(site)
        site.settings.replication.primary_url = url  # refusals name it
        site.set_role("standby", epoch)
    if state.wake_applier is not None:
        state.wake_applier.set()
    return {"site": site.name, "epoch": epoch, "primary_url": url, "quarantine": report}


async def follow(order: FollowOrder, site: Site = Depends(require_replication)) -> dict[str, Any]:
    url = order.primary_url.rstrip("/")
    if order.epoch < site.epoch:
        raise _stale(site, order.epoch, "follow order")
    facts = await _primary_facts(site, url)
    if facts.get("site") == site.name:
        raise ApiError(400, "follow_self", f"{url} is this site ({site.name}); name the primary")
    if facts.get("role") != "primary":
        raise ApiError(
            409,
            "not_primary",
            f"{url} (site {facts.get('site')!r}) is a {facts.get('role')}, not a primary; "
            "nothing was changed here: point this site at the primary",
        )
    if int(facts.get("epoch", 0)) != order.epoch:
        raise ApiError(
            409,
            "epoch_mismatch",
            f"{url} is on epoch {facts.get('epoch')}, the order says {order.epoch}; "
            "nothing was changed here",
        )
    if facts.get("fenced"):
        raise ApiError(409, "primary_fenced", f"{url} is fenced: {facts['fenced']}")
    try:
        result = await asyncio.to_thread(follow_now, site, url, facts)
    except rejoin.RejoinError as exc:
        raise ApiError(409, "cannot_rewind", str(exc)) from exc
    log.warning(json.dumps({"event": "following", **result}, default=str))
    return result
