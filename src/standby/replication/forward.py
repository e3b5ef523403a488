"""Write forwarding: a standby sends a write it refused on to its primary.

A standby refuses a write before changing anything (503 ``not_writable`` marked
``Standby-Refused: before-write``). With forwarding on, it sends the same request (method,
path, headers, body) to the primary it follows, over the inter-site link, and relays the
primary's answer; the client sees the primary's answer, as with Aurora Global Database's
write forwarding. So a write reaches the primary whatever the traffic layer in front
does: a failback ramp that splits traffic, a sticky client pinned to the old primary,
HAProxy that does not retry.

Only a request refused before anything changed is forwarded, once (a request carrying
``Standby-Forwarded-By`` is never forwarded again). When the primary cannot be reached
(it is down: a failover is under way) the standby's own refusal goes back, so a traffic
layer can hold the request for the new primary. A plain ASGI middleware: requests on a
primary pass straight through, unbuffered."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from standby.errors import REFUSED_BEFORE_WRITE, REFUSED_HEADER
from standby.httpclient import proxy_client
from standby.httpheaders import end_to_end, forwarded_request, request_target

if TYPE_CHECKING:
    from standby.server import Site

log = logging.getLogger("standby.replication.forward")

FORWARDED_BY = "standby-forwarded-by"
MAX_FORWARD_BODY = 1024 * 1024  # identity requests are small; larger ones are not held
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]


def forwardable(
    role: str, status: int, headers: list[tuple[bytes, bytes]], forwarded: bool
) -> bool:
    """Whether a response a site is about to send should be replaced by the primary's:
    this site is a standby, it refused before changing anything, and the request was not
    itself forwarded. Pure."""
    if role != "standby" or forwarded or status != 503:
        return False
    marker = REFUSED_HEADER.lower().encode()
    return any(k.lower() == marker and v == REFUSED_BEFORE_WRITE.encode() for k, v in headers)


class WriteForwarding:
    """ASGI middleware: on a standby, replace a before-write refusal by the primary's answer."""

    def __init__(
        self,
        app: ASGIApp,
        site: Site,
        primary: Callable[[], str | None],
        timeout: float = 10.0,
    ) -> None:
        self.app = app
        self.site = site
        self.primary = primary
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self.forwarded = 0
        self.unreachable = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.site.role != "standby" or not _bounded(scope):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        forwarded = any(k.lower() == FORWARDED_BY.encode() for k, _ in scope["headers"])
        held: list[Message] = []
        replace = False
        given = False

        async def replay() -> Message:
            nonlocal given
            if given:  # after the body, the app only listens for the client leaving
                message: Message = await receive()
                return message
            given = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal replace
            if message["type"] == "http.response.start":
                replace = forwardable(
                    self.site.role, message["status"], message.get("headers", []), forwarded
                )
            if replace:
                held.append(message)  # the refusal, kept in case the primary is unreachable
            else:
                await send(message)

        await self.app(scope, replay, capture)
        if not replace:
            return
        answer = await self._forward(scope, body)
        if answer is None:
            for message in held:
                await send(message)
            return
        status, headers, content = answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content, "more_body": False})

    async def _forward(
        self, scope: Scope, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        url = self.primary()
        if not url:
            return None
        if self._client is None:
            self._client = proxy_client(timeout=httpx.Timeout(self.timeout, connect=1.0))
        client = scope.get("client")
        headers = forwarded_request(
            list(scope["headers"]), client[0] if client else None, scope.get("scheme", "http")
        )
        headers.append((FORWARDED_BY.encode(), self.site.name.encode()))
        request = self._client.build_request(
            scope["method"], url.rstrip("/") + request_target(scope), headers=headers, content=body
        )
        try:
            resp = await self._client.send(request, stream=True)
            try:
                content = b"".join([chunk async for chunk in resp.aiter_raw()])
            finally:
                await resp.aclose()
        except httpx.HTTPError as exc:
            self.unreachable += 1
            log.warning(
                json.dumps(
                    {"event": "write_forward_failed", "primary": url, "error": repr(exc)[:200]}
                )
            )
            return None
        self.forwarded += 1
        out = [(k, v) for k, v in end_to_end(list(resp.headers.raw)) if k != b"content-length"]
        out.append((b"content-length", str(len(content)).encode()))
        out.append((FORWARDED_BY.encode(), self.site.name.encode()))
        return resp.status_code, out, content

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def _bounded(scope: Scope) -> bool:
    """A request whose body size is known and small (or that has none): only those are
    held in memory so they can be sent on."""
    for key, value in scope["headers"]:
        if key.lower() == b"transfer-encoding":
            return False
        if key.lower() == b"content-length":
            return value.strip().isdigit() and int(value) <= MAX_FORWARD_BODY
    return True


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
