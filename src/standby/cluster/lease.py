"""The site side of the lease: a primary writes only while it holds the controller's lease.

The primary renews every TTL/3 (``POST {controller}/lease/renew``) and counts the lease
from when it SENT the renewal, on its own monotonic clock; the controller counts from
when it GRANTED it and waits TTL + margin before promoting anyone, so this site has
always stopped acknowledging writes first.

Failsafe (a controller outage must not stop logins): when the controller cannot be
reached at all — not when it says no — the primary asks every peer
(``POST /cluster/failsafe``). If every one confirms it is still a standby on our epoch,
the lease is extended from when we sent that question. A standby the controller has
told to prepare for promotion (``POST /cluster/prepare``) stops confirming, and reports
how long ago it last confirmed, so the controller can wait that confirmation out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import httpx
from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from standby.crypto import constant_time_equals
from standby.errors import unauthorized
from standby.httpclient import service_client
from standby.openapi import errors, json_body
from standby.request_body import read_json
from standby.store import NotWritable

if TYPE_CHECKING:
    from fastapi import FastAPI

    from standby.server import Site

log = logging.getLogger("standby.cluster.lease")
PART = "cluster.lease"


@dataclass
class LeaseState:
    ttl: float
    valid_until: float = 0.0  # monotonic; writes stop at this instant
    source: str = "none"  # "controller" | "failsafe" | "denied" | "none"
    controller_reachable: bool = False
    last_error: str | None = None
    renewals: int = 0
    # standby side of the failsafe
    last_confirmed: float | None = None  # monotonic time of the last confirmation we gave
    withheld_epoch: int | None = None  # stop confirming while we are on this epoch

    def to_dict(self) -> dict[str, Any]:
        left = self.valid_until - time.monotonic()
        return {
            "ttl": self.ttl,
            "valid_for": round(left, 3) if left > 0 else 0.0,
            "source": self.source,
            "controller_reachable": self.controller_reachable,
            "last_error": self.last_error,
            "renewals": self.renewals,
        }


def _auth(site: Site, secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "Standby-Site": site.name}


def _log(event: str, **fields: Any) -> None:
    log.warning(json.dumps({"event": event, **fields}))


async def _peers_confirm(site: Site, client: httpx.AsyncClient, timeout: float) -> bool:
    """True when every peer says it is a standby on our epoch (and there is a peer)."""
    peers = site.settings.cluster.peer_urls
    if not peers:
        return False
    secret = site.secrets.replication_secret.get_secret_value()
    body = {"site": site.name, "epoch": site.epoch}

    async def ask(url: str) -> bool:
        try:
            resp = await client.post(
                f"{url.rstrip('/')}/cluster/failsafe",
                json=body,
                headers=_auth(site, secret),
                timeout=timeout,
            )
            return resp.status_code == 200 and resp.json().get("confirmed") is True
        except (httpx.HTTPError, ValueError):
            return False

    answers = await asyncio.gather(*(ask(u) for u in peers))
    return all(answers)


async def renew_once(
    site: Site, state: LeaseState, client: httpx.AsyncClient, timeout: float | None = None
) -> None:
    """One renewal (or failsafe round); updates ``state``."""
    url = site.settings.cluster.controller_url
    assert url is not None
    secret = site.secrets.replication_secret.get_secret_value()
    # A reply is useful until sent + TTL; waiting half of that rides out a slow controller.
    timeout = timeout or max(state.ttl / 2, 0.05)
    sent = time.monotonic()
    try:
        resp = await client.post(
            f"{url.rstrip('/')}/lease/renew",
            json={"site": site.name, "epoch": site.epoch},
            headers=_auth(site, secret),
            timeout=timeout,
        )
        body = resp.json() if resp.status_code in (200, 409) else {}
    except (httpx.HTTPError, ValueError) as exc:
        state.controller_reachable = False
        state.last_error = f"controller unreachable: {type(exc).__name__}"
        asked = time.monotonic()
        if await _peers_confirm(site, client, timeout):
            if state.source != "failsafe":
                _log("lease_failsafe", site=site.name, epoch=site.epoch)
            state.valid_until = max(state.valid_until, asked + state.ttl)
            state.source = "failsafe"
        return
    state.controller_reachable = True
    if resp.status_code == 200 and body.get("granted") is True:
        state.ttl = float(body.get("ttl", state.ttl))
        state.valid_until = sent + state.ttl
        state.source = "controller"
        state.last_error = None
        state.renewals += 1
        return
    # The controller answered and said no: no failsafe, stop writing now.
    if state.source != "denied":
        _log("lease_denied", site=site.name, epoch=site.epoch, answer=body or resp.status_code)
    state.valid_until = 0.0
    state.source = "denied"
    state.last_error = str(body.get("message") or f"renewal refused ({resp.status_code})")


async def keep_lease(site: Site) -> None:
    """Background task: renew while primary; poll the role quickly otherwise."""
    state: LeaseState = site.parts[PART]
    if site.role == "primary":
        # Deliberately blocking, before the first await: this task is the first
        # background task, so start-up work of other parts (the signing-key bootstrap
        # writes at once) runs only after the first renewal, with the lease held.
        worker = threading.Thread(target=first_renewal, args=(site, state), daemon=True)
        worker.start()
        worker.join(6.0)
    async with service_client() as client:
        while True:
            if site.role != "primary":
                await asyncio.sleep(0.02)
                continue
            started = time.monotonic()
            try:
                await renew_once(site, state, client)
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any surprise
                state.last_error = f"renewal failed: {exc}"
            holding = state.valid_until > time.monotonic()
            pause = state.ttl / 3 if holding else min(0.05, state.ttl / 10)
            await asyncio.sleep(max(0.0, started + pause - time.monotonic()))


def lease_guard(site: Site) -> None:
    state: LeaseState = site.parts[PART]
    if site.role == "primary" and time.monotonic() >= state.valid_until:
        raise NotWritable(
            f"site {site.name!r} does not hold the controller's lease "
            f"({state.last_error or 'not renewed yet'}); writes resume once it is renewed"
        )


class FailsafeQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: str = Field(min_length=1, max_length=64)
    epoch: int = Field(ge=1)


class PrepareOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epoch: int = Field(ge=1)  # the epoch the promotion will create


def _require_secret(request: Request) -> Site:
    site: Site = request.app.state.site
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    secret = site.secrets.replication_secret.get_secret_value()
    if not (constant_time_equals(token.strip(), secret) and scheme.lower() == "bearer"):
        raise unauthorized("cluster requests need Authorization: Bearer <replication_secret>")
    return site


def mount_routes(app: FastAPI, site: Site) -> None:
    state: LeaseState = site.parts[PART]

    # The secret is checked before the body is read: an unauthenticated caller learns
    # nothing about what these routes expect.
    authenticated = [Depends(_require_secret)]

    @app.post(
        "/cluster/failsafe",
        dependencies=authenticated,
        responses=errors(400, 401),
        openapi_extra=json_body(FailsafeQuestion),
    )
    def failsafe(
        question: Annotated[FailsafeQuestion, Depends(read_json(FailsafeQuestion))],
    ) -> dict[str, Any]:
        reason = None
        if site.role != "standby":
            reason = f"{site.name} is a {site.role}"
        elif site.epoch != question.epoch:
            reason = f"{site.name} is on epoch {site.epoch}, not {question.epoch}"
        elif state.withheld_epoch == site.epoch:
            reason = f"{site.name} was told to prepare for promotion"
        if reason is None:
            state.last_confirmed = time.monotonic()
        return {
            "confirmed": reason is None,
            "site": site.name,
            "epoch": site.epoch,
            "role": site.role,
            "reason": reason,
        }

    @app.post(
        "/cluster/prepare",
        dependencies=authenticated,
        responses=errors(400, 401),
        openapi_extra=json_body(PrepareOrder),
    )
    def prepare(order: Annotated[PrepareOrder, Depends(read_json(PrepareOrder))]) -> dict[str, Any]:
        state.withheld_epoch = site.epoch
        ago = None if state.last_confirmed is None else time.monotonic() - state.last_confirmed
        _log("failsafe_withheld", site=site.name, epoch=site.epoch, next_epoch=order.epoch)
        return {
            "site": site.name,
            "epoch": site.epoch,
            "role": site.role,
            "last_confirmed_ago": ago,
        }

    @app.get("/cluster/lease", dependencies=authenticated, responses=errors(401))
    def lease() -> dict[str, Any]:
        head = site.store.head()
        return {
            "site": site.name,
            "role": site.role,
            "epoch": site.epoch,
            "head_lsn": head.lsn,
            "head_hash": head.hash,
            "lease": state.to_dict(),
        }


def first_renewal(site: Site, state: LeaseState) -> None:
    """The first renewal, retried briefly (bounded) while the controller is slow to answer."""

    async def once() -> None:
        async with service_client() as client:
            deadline = time.monotonic() + 5.0  # bounded: a dead controller delays start-up 5 s
            while True:
                await renew_once(site, state, client, timeout=1.0)
                if state.valid_until > time.monotonic() or state.source == "denied":
                    return
                if time.monotonic() >= deadline:
                    return
                await asyncio.sleep(0.1)

    asyncio.run(once())


def mount(app: FastAPI, site: Site) -> None:
    """Add the lease (when a controller is configured) and the failsafe routes."""
    state = LeaseState(ttl=site.settings.cluster.lease_ttl)
    site.parts[PART] = state
    mount_routes(app, site)
    if site.settings.cluster.controller_url:
        site.background.insert(0, keep_lease)  # first: see keep_lease
        site.write_guards.append(lambda: lease_guard(site))
