"""HTTP clients that Standby's parts use to talk to each other and to proxy for clients.

None of them keeps a cookie jar: httpx's default jar stores every ``Set-Cookie`` an
upstream sends and adds it to the next request that carries no ``Cookie`` field, which
in a proxy hands one user's session to the next client. Here a response can only ever
reach the request that caused it."""

from __future__ import annotations

import http.cookiejar
import urllib.request
from typing import Any

import httpx


class NoCookieJar(http.cookiejar.CookieJar):
    """A cookie jar that never stores a cookie and never adds one to a request."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: urllib.request.Request) -> None:
        return None

    def add_cookie_header(self, request: urllib.request.Request) -> None:
        return None


def service_client(**kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for calls between parts (health checks, replication,
    lease, controller orders, drills' probes): no cookies kept between requests."""
    return httpx.AsyncClient(cookies=NoCookieJar(), **kwargs)


def proxy_client(**kwargs: Any) -> httpx.AsyncClient:
    """A client for a reverse proxy: no cookies kept and no default headers (httpx would
    otherwise add ``Accept``, ``Accept-Encoding`` and ``User-Agent`` to requests that
    came without them, and a site could then compress a response the client never asked
    to be compressed). Redirects are relayed, never followed."""
    client = httpx.AsyncClient(cookies=NoCookieJar(), follow_redirects=False, **kwargs)
    for name in list(client.headers.keys()):
        del client.headers[name]
    return client
