"""The builtin router: an asyncio reverse proxy (weights, health checks, sticky sessions).

A plain ASGI app served by uvicorn; upstream requests and responses are streamed with
httpx. The admin API lives under ``/_router/`` on the same port (see ``admin.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from standby.cluster.topology import ClusterSecrets, Topology
from standby.cluster.traffic import weights as w
from standby.cluster.traffic.asgi import Receive, Scope, Send, send_json
from standby.cluster.traffic.probes import SiteHealth, run_checks
from standby.errors import REFUSED_BEFORE_WRITE, REFUSED_HEADER
from standby.httpclient import proxy_client
from standby.httpheaders import cookie_value, end_to_end, forwarded_request, request_target

log = logging.getLogger("standby.router")


ADMIN_PREFIX = "/_router/"


class _Body:
    """The client's request body as an async stream; remembers whether any byte was read,
    so a connect failure before that can be retried on another site."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.started = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.started = True
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise httpx.StreamClosed()
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return


# While a request is held, it looks again at least this often (doubling up to the max).
HOLD_PAUSE_MIN, HOLD_PAUSE_MAX = 0.05, 0.5

# Request bodies up to this size are read before forwarding, so the request can be sent
# again to another site; larger ones are streamed (and retried only before the first byte).
REPLAY_LIMIT = 64 * 1024


async def _request_body(
    headers: list[tuple[bytes, bytes]], receive: Receive
) -> bytes | _Body | None:
    length: int | None = None
    chunked = False
    for key, value in headers:
        k = key.lower()
        if k == b"transfer-encoding":
            chunked = True
        elif k == b"content-length" and value.strip().isdigit():
            length = int(value)
    if not chunked and not length:
        return None
    if chunked or length is None or length > REPLAY_LIMIT:
        return _Body(receive)
    data = b""
    async for chunk in _Body(receive):
        data += chunk
    return data


def _refused_before_write(response: httpx.Response) -> bool:
    """A site refused a write before changing anything (a standby, a fenced primary, a
    primary without its lease): the same request may go to another site."""
    return (
        response.status_code == 503 and response.headers.get(REFUSED_HEADER) == REFUSED_BEFORE_WRITE
    )


# Methods a request of which may be sent again even when it may have reached the site
# (RFC 9110 9.2.2): an answer lost to a dying connection is asked for again.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


def may_resend(exc: Exception, method: str) -> bool:
    """Whether a request that failed with ``exc`` before any response byte may be sent
    again: always when it provably never reached a site (no connection), otherwise only
    for idempotent methods. Pure."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return True
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return method.upper() in IDEMPOTENT
    return False


class Router:
    """State of the builtin router and its ASGI entry point."""

    def __init__(
        self,
        sites: dict[str, str],
        weights: dict[str, int],
        admin_token: str,
        *,
        health_interval: float = 0.2,
        sticky_cookie: str = "standby_route",
        connect_timeout: float = 1.0,
        read_timeout: float = 60.0,
        fall: int = 2,
        rise: int = 1,
        hold_s: float = 5.0,
        keepalive_expiry: float = 2.0,
    ) -> None:
        self.sites = {name: SiteHealth(name, url.rstrip("/")) for name, url in sites.items()}
        self.weights = w.validate(weights, self.sites)
        self.admin_token = admin_token
        self.health_interval = health_interval
        self.sticky_cookie = sticky_cookie
        self.fall, self.rise = fall, rise
        self.timeout = httpx.Timeout(read_timeout, connect=connect_timeout, pool=10.0)
        # How long a request waits for a site that can take it (during a failover).
        self.hold_s = hold_s
        # Shorter than the sites' keep-alive (uvicorn's default, 5 s): the router drops an
        # idle connection before the site does, so it never reuses one being closed.
        self.keepalive_expiry = keepalive_expiry
        self.requests = 0
        self.retries = 0
        self.held = 0
        self._changed: asyncio.Event | None = None
        self._client: httpx.AsyncClient | None = None
        self._checks: asyncio.Task[None] | None = None

    @classmethod
    def from_topology(cls, topology: Topology, secrets: ClusterSecrets) -> Router:
        primary = next(s.name for s in topology.sites if s.role == "primary")
        names = [s.name for s in topology.sites]
        return cls(
            {s.name: s.url for s in topology.sites},
            w.initial_weights(primary, names),
            secrets.admin_token.get_secret_value(),
            health_interval=topology.traffic.health_interval,
            sticky_cookie=topology.traffic.sticky_cookie,
            hold_s=topology.traffic.hold_s,
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        limits = httpx.Limits(
            max_connections=512,
            max_keepalive_connections=128,
            keepalive_expiry=self.keepalive_expiry,
        )
        self._client = proxy_client(timeout=self.timeout, limits=limits)
        self._changed = asyncio.Event()
        site_list = list(self.sites.values())
        self._checks = asyncio.create_task(
            run_checks(
                site_list,
                self.health_interval,
                fall=self.fall,
                rise=self.rise,
                on_change=self._notify,
            )
        )

    async def stop(self) -> None:
        if self._checks:
            self._checks.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checks
        if self._client:
            await self._client.aclose()

    # -- decisions ---------------------------------------------------------------------

    def healthy(self) -> set[str]:
        return {name for name, s in self.sites.items() if s.healthy}

    def pick(self, pinned: str | None, exclude: set[str]) -> str | None:
        return w.resolve(pinned, self.weights, self.healthy(), random.random(), exclude)

    def set_weights(self, update: dict[str, object]) -> dict[str, int]:
        self.weights = {**self.weights, **w.validate(update, self.sites)}
        log.info(json.dumps({"event": "weights_set", "weights": self.weights}))
        self._notify()
        return dict(self.weights)

    def _notify(self) -> None:
        """Health or weights changed: wake the requests that are waiting for a site."""
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    async def _wait_for_change(self, deadline: float, pause: float) -> bool:
        """Wait until health or weights change, ``pause`` passes, or ``deadline``; False
        when the deadline has passed."""
        left = deadline - time.monotonic()
        if left <= 0 or self._changed is None:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), min(left, pause))
        return True

    def status(self) -> dict[str, Any]:
        return {
            "weights": dict(self.weights),
            "requests": self.requests,
            "retries": self.retries,
            "held": self.held,
            "hold_s": self.hold_s,
            "sticky_cookie": self.sticky_cookie,
            "health_interval": self.health_interval,
            "sites": {
                name: {
                    "url": s.url,
                    "weight": self.weights.get(name, 0),
                    "healthy": s.healthy,
                    "consecutive_failures": s.failures,
                    "last_error": s.last_error,
                    "requests": s.requests,
                    "errors": s.errors,
                    "in_flight": s.in_flight,
                }
                for name, s in self.sites.items()
            },
        }

    # -- ASGI --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] != "http":
            return  # websockets are not proxied
        elif scope["path"].startswith(ADMIN_PREFIX):
            from standby.cluster.traffic.admin import handle_admin

            await handle_admin(self, scope, receive, send)
        else:
            await self._proxy(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._client is not None, "router not started"
        self.requests += 1
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        pinned = cookie_value(headers, self.sticky_cookie)
        client = scope.get("client")
        upstream_headers = forwarded_request(
            headers, client[0] if client else None, scope.get("scheme", "http")
        )
        body = await _request_body(headers, receive)
        target = request_target(scope)
        # A body held in memory can be sent again; a streamed one only before its first byte.
        resendable = not isinstance(body, _Body)
        deadline = time.monotonic() + self.hold_s
        pause = HOLD_PAUSE_MIN
        tried: set[str] = set()
        held = False
        refusal: tuple[int, list[tuple[bytes, bytes]], bytes] | None = None
        while True:
            name = self.pick(pinned, tried)
            if name is None and resendable:
                name = w.fallback(self.weights, self.healthy(), tried)
            if name is None:
                # No site can take it now: hold the request until one can (a failover).
                if not held:
                    held = True
                    self.held += 1
                if not await self._wait_for_change(deadline, pause):
                    if refusal is not None:  # the last site's own answer says most
                        await _send_whole(send, *refusal)
                        return
                    await send_json(
                        send,
                        503,
                        {
                            "error": "no_healthy_site",
                            "message": f"no site could take the request within {self.hold_s} s",
                        },
                        [(b"retry-after", b"1")],
                    )
                    return
                pause = min(pause * 2, HOLD_PAUSE_MAX)
                tried.clear()
                continue
            site = self.sites[name]
            request = self._client.build_request(
                scope["method"],
                site.url + target,
                headers=upstream_headers,
                content=body,
            )
            site.requests += 1
            site.in_flight += 1
            try:
                response = await self._client.send(request, stream=True)
            except (httpx.HTTPError, httpx.StreamError) as exc:
                site.in_flight -= 1
                site.errors += 1
                connect = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if connect:
                    site.eject(f"connect: {exc!r}"[:200])
                    self._notify()
                unsent = not isinstance(body, _Body) or not body.started
                if unsent and may_resend(exc, scope["method"]):
                    tried.add(name)
                    self.retries += 1
                    continue
                status, code = (
                    (504, "gateway_timeout")
                    if isinstance(exc, httpx.TimeoutException) and not connect
                    else (502, "bad_gateway")
                )
                await send_json(send, status, {"error": code, "message": f"{name}: {exc!r}"[:200]})
                return
            if resendable and _refused_before_write(response):
                # Nothing changed on that site: try the others, or wait for a primary.
                site.in_flight -= 1
                refused_body = b"".join([chunk async for chunk in response.aiter_raw()])
                await response.aclose()
                refusal = (503, end_to_end(list(response.headers.raw)), refused_body)
                tried.add(name)
                self.retries += 1
                continue
            try:
                await self._relay(response, name, pinned, send)
            finally:
                site.in_flight -= 1
                await response.aclose()
            return

    async def _relay(
        self, response: httpx.Response, site: str, pinned: str | None, send: Send
    ) -> None:
        out = end_to_end(list(response.headers.raw))
        if pinned != site:
            cookie = f"{self.sticky_cookie}={site}; Path=/; HttpOnly; SameSite=Lax"
            out.append((b"set-cookie", cookie.encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        try:
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.HTTPError as exc:
            # Headers are out; all we can do is cut the response short so the client sees it.
            self.sites[site].errors += 1
            log.info(
                json.dumps({"event": "upstream_broke", "site": site, "error": repr(exc)[:200]})
            )
            raise
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send_whole(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def listen_address(listen: str) -> tuple[str, int]:
    """(host, port) of ``traffic.listen`` (a URL such as http://127.0.0.1:8000)."""
    parts = urlsplit(listen if "://" in listen else f"http://{listen}")
    if not parts.hostname or not parts.port:
        raise ValueError(f"traffic.listen must name a host and port, got {listen!r}")
    return parts.hostname, parts.port


def make_server(router: Router, host: str, port: int, log_level: str = "warning") -> Any:
    """A uvicorn Server for the router (``await server.serve()`` or ``server.run()``)."""
    import uvicorn

    config = uvicorn.Config(
        router,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_keep_alive=30,
        proxy_headers=False,  # the router is the edge: the peer address is the client
        server_header=False,  # the site's own Server and Date pass through
        date_header=False,
    )
    return uvicorn.Server(config)
