"""Active health checks of each site (GET /readyz) for the builtin router."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from standby.httpclient import service_client

log = logging.getLogger("standby.router")


@dataclass
class SiteHealth:
    """What the router knows about one upstream site."""

    name: str
    url: str
    healthy: bool = True  # optimistic until the first check says otherwise
    failures: int = 0
    successes: int = 0
    last_error: str | None = None
    last_check: float | None = None  # monotonic
    requests: int = 0
    errors: int = 0
    in_flight: int = 0

    def record(self, ok: bool, error: str | None, fall: int, rise: int) -> bool:
        """Fold one probe result in; return True when healthy flipped."""
        self.last_check = time.monotonic()
        before = self.healthy
        if ok:
            self.failures = 0
            self.successes += 1
            self.last_error = None
            if self.successes >= rise:
                self.healthy = True
        else:
            self.successes = 0
            self.failures += 1
            self.last_error = error
            if self.failures >= fall:
                self.healthy = False
        if before != self.healthy:
            log.info(
                json.dumps(
                    {
                        "event": "site_health",
                        "site": self.name,
                        "healthy": self.healthy,
                        "error": error,
                    }
                )
            )
        return before != self.healthy

    def eject(self, error: str) -> None:
        """Passive check: a connect failure takes the site out until a probe passes."""
        self.successes = 0
        self.failures = max(self.failures, 1)
        self.last_error = error
        if self.healthy:
            self.healthy = False
            log.info(json.dumps({"event": "site_ejected", "site": self.name, "error": error}))


async def probe(
    client: httpx.AsyncClient, site: SiteHealth, timeout: float
) -> tuple[bool, str | None]:
    try:
        resp = await client.get(f"{site.url}/readyz", timeout=timeout)
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"[:200]
    if resp.status_code == 200:
        return True, None
    return False, f"readyz HTTP {resp.status_code}: {resp.text[:150]}"


async def run_checks(
    sites: list[SiteHealth],
    interval: float,
    *,
    fall: int = 2,
    rise: int = 1,
    timeout: float | None = None,
    on_change: Callable[[], None] | None = None,
) -> None:
    """Probe every site each ``interval`` seconds until cancelled; ``on_change`` is
    called when a site's health flips."""
    timeout = timeout if timeout is not None else max(1.0, 3 * interval)
    async with service_client() as client:
        while True:
            started = time.monotonic()
            results = await asyncio.gather(*(probe(client, s, timeout) for s in sites))
            for site, (ok, error) in zip(sites, results, strict=True):
                if site.record(ok, error, fall, rise) and on_change is not None:
                    on_change()
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
