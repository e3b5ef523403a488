"""Small real HTTP servers for router tests: uvicorn in a thread, and an echo site app."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import uvicorn

from tests.support.postgres import free_port


class ThreadServer:
    """A uvicorn server for an ASGI app, in its own thread and event loop."""

    def __init__(
        self, app: Any, port: int | None = None, server: Any = None, host: str = "127.0.0.1"
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"
        config = uvicorn.Config(
            app, host=host, port=self.port, log_level="warning", lifespan="auto"
        )
        self.server = server or uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server on {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class EchoSite:
    """An upstream that answers with what it received and names itself like a Standby site.

    /readyz answers 200 or 503 (``ready``); /big/<n> streams n bytes in 64 KiB chunks;
    /upload counts a streamed request body; everything else echoes method, path, headers."""

    def __init__(self, name: str, epoch: int = 1) -> None:
        self.name = name
        self.epoch = epoch
        self.ready = True
        self.refuse_writes = False  # act as a standby: POST -> 503, Standby-Role: standby
        self.hits = 0

    def _headers(self, extra: list[tuple[bytes, bytes]] = ()) -> list[tuple[bytes, bytes]]:  # type: ignore[assignment]
        return [
            (b"standby-site", self.name.encode()),
            (b"standby-epoch", str(self.epoch).encode()),
            *extra,
        ]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/readyz":
            start = {"status": 200 if self.ready else 503, "headers": self._headers()}
            await send({"type": "http.response.start", **start})
            await send({"type": "http.response.body", "body": b"{}"})
            return
        self.hits += 1
        if self.refuse_writes and scope["method"] == "POST":
            refusal = self._headers(
                [(b"standby-role", b"standby"), (b"standby-refused", b"before-write")]
            )
            await send({"type": "http.response.start", "status": 503, "headers": refusal})
            await send({"type": "http.response.body", "body": b'{"error": "not_writable"}'})
            return
        if path.startswith("/big/"):
            total = int(path.rsplit("/", 1)[1])
            await send({"type": "http.response.start", "status": 200, "headers": self._headers()})
            sent = 0
            while sent < total:
                n = min(65536, total - sent)
                await send({"type": "http.response.body", "body": b"x" * n, "more_body": True})
                sent += n
                await asyncio.sleep(0)
            await send({"type": "http.response.body", "body": b""})
            return
        received = 0
        while True:
            message = await receive()
            received += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = {
            "site": self.name,
            "method": scope["method"],
            "path": path,
            "query": scope["query_string"].decode(),
            "received": received,
            "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
        }
        hop = [
            (b"connection", b"x-hop-secret"),
            (b"x-hop-secret", b"1"),
            (b"keep-alive", b"timeout=5"),
            (b"proxy-agent", b"echo"),
            (b"x-end-to-end", b"kept"),
            (b"content-type", b"application/json"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": self._headers(hop)})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Poll ``predicate`` until it is true; fail the test with a clear message otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def sites_seen(url: str, n: int, **kwargs: Any) -> dict[str, int]:
    """Send n requests (no cookies kept) and count the Standby-Site of each answer."""
    counts: dict[str, int] = {}
    with httpx.Client(timeout=5) as client:
        for _ in range(n):
            resp = client.get(f"{url}/count", **kwargs)
            client.cookies.clear()
            site = resp.headers.get("standby-site", f"status-{resp.status_code}")
            counts[site] = counts.get(site, 0) + 1
    return counts
