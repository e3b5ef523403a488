"""Replication requests: the shared replication secret, and the caller's epoch header."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi import Request

from standby.crypto import constant_time_equals
from standby.errors import unauthorized
from standby.replication.fencing import observe_epoch

if TYPE_CHECKING:
    from standby.server import Site

EPOCH_HEADER = "Standby-Epoch"


def site_of(request: Request) -> Site:
    return request.app.state.site  # type: ignore[no-any-return]


def bearer_matches(header: str | None, secret: str) -> bool:
    scheme, _, token = (header or "").partition(" ")
    # Compare even on a malformed header so timing says nothing about which part was wrong.
    return constant_time_equals(token.strip(), secret) and scheme.lower() == "bearer"


async def require_replication(request: Request) -> Site:
    """FastAPI dependency for every /replication route."""
    site = site_of(request)
    secret = site.secrets.replication_secret.get_secret_value()
    if not bearer_matches(request.headers.get("authorization"), secret):
        raise unauthorized("replication requests need Authorization: Bearer <replication_secret>")
    raw = request.headers.get(EPOCH_HEADER)
    if raw and raw.strip().isdigit() and int(raw) > site.epoch:
        caller = request.headers.get("standby-site") or "a replication request"
        await asyncio.to_thread(observe_epoch, site, int(raw), caller)
    return site
