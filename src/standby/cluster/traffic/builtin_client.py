"""The controller's side of the builtin router: weights over its admin API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from standby.cluster.traffic.state import Change, ServerView, SetWeight
from standby.httpclient import service_client


class RouterError(RuntimeError):
    pass


class BuiltinRouterClient:
    """TrafficBackend that PUTs weights to a running `standby router`."""

    # No server states: the router already sends a client pinned to a site of weight 0
    # elsewhere (traffic/weights.py ``resolve``), which is what HAProxy needs maint for.
    states = False

    def __init__(self, base_url: str, admin_token: str, timeout: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {admin_token}"}
        self.timeout = timeout

    async def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        url = f"{self.base_url}/_router/{path}"
        try:
            async with service_client(timeout=self.timeout) as client:
                resp = await client.request(method, url, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            raise RouterError(f"router at {self.base_url} unreachable: {exc!r}") from exc
        if resp.status_code != 200:
            raise RouterError(f"router {method} {path}: HTTP {resp.status_code}: {resp.text[:200]}")
        data: dict[str, Any] = resp.json()
        return data

    async def set_weights(self, weights: dict[str, int]) -> None:
        await self._call("PUT", "weights", dict(weights))

    async def weights(self) -> dict[str, int]:
        data = await self._call("GET", "weights")
        return {str(k): int(v) for k, v in data.items()}

    async def status(self) -> dict[str, Any]:
        return await self._call("GET", "status")

    async def servers(self) -> dict[str, ServerView]:
        sites = (await self.status()).get("sites") or {}
        return {
            str(name): ServerView(int(s["weight"]), None, "up" if s.get("healthy") else "down")
            for name, s in sites.items()
        }

    async def in_flight(self) -> dict[str, int]:
        sites = (await self.status()).get("sites") or {}
        return {str(name): int(s.get("in_flight", 0)) for name, s in sites.items()}

    async def apply(self, changes: Sequence[Change]) -> None:
        """Every weight in one update, so traffic moves between sites at once."""
        weights = {c.site: c.weight for c in changes if isinstance(c, SetWeight)}
        if weights:
            await self.set_weights(weights)
