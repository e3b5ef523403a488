"""Real browsers for tests of the hosted pages: Debian's Chromium driven by Playwright
(never a downloaded browser), a watch that collects every Content-Security-Policy
violation a page reports, and a client application's redirect URIs served on their own
loopback origin so the browser really lands there."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.support.traffic import ThreadServer

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 15_000

# Injected by the browser into every document before the page's own content (the pages'
# CSP forbids their scripts, not this one): each violation goes to window.__csp and, so
# that none is lost when the page navigates away, straight to the test.
_RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  const v = {directive: e.effectiveDirective, blocked: e.blockedURI, page: e.documentURI};
  window.__csp.push(v);
  window.__standbyCspViolation(v);
});
"""


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium from /usr/bin/chromium (scripts/test.sh installs Debian's)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing (scripts/test.sh installs it: apt-get chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """One page in a browser context of its own (its own cookies), and what it reported."""

    context: BrowserContext
    page: Page
    console: list[str] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)

    def reported(self) -> list[str]:
        """Console messages, violations sent as they happened, and those still recorded
        on the current document."""
        on_page = self.page.evaluate("window.__csp || []")
        return [*self.console, *map(str, self.violations), *map(str, on_page)]

    def assert_clean(self, statuses: tuple[int, ...] = ()) -> None:
        """Nothing reported, but Chromium's console line for a page the test expected to
        answer with one of ``statuses`` (an error page it asked for)."""
        expected = {
            f"error: Failed to load resource: the server responded with a status of {s} "
            for s in statuses
        }
        got = [m for m in self.reported() if not any(m.startswith(e) for e in expected)]
        assert got == [], f"the browser reported: {got}"

    def wait_for_url(self, prefix: str) -> str:
        """The URL once the page is at ``prefix``...; on a timeout, fail with what the
        browser reported (a CSP block leaves the page where it was)."""
        try:
            self.page.wait_for_url(lambda url: url.startswith(prefix), timeout=WAIT_MS)
        except PlaywrightTimeout:
            raise AssertionError(
                f"the browser stayed at {self.page.url}, not {prefix}; it reported "
                f"{self.reported()}"
            ) from None
        return self.page.url


@contextmanager
def watched_page(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context()
    watched = Watched(context, context.new_page())

    def on_console(message: ConsoleMessage) -> None:
        watched.console.append(f"{message.type}: {message.text} ({message.location['url']})")

    def on_violation(violation: dict[str, Any]) -> None:
        watched.violations.append(violation)

    context.expose_function("__standbyCspViolation", on_violation)
    context.add_init_script(_RECORD_VIOLATIONS)
    watched.page.on("console", on_console)
    try:
        yield watched
    finally:
        context.close()


class Landing:
    """A client application's redirect URIs: a real HTTP server on its own loopback
    origin that answers any path with a small page and records each (path, query) the
    browser brought, in order."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.server = ThreadServer(self, host=host)
        self.url = self.server.url

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        query = dict(parse_qsl(scope["query_string"].decode()))
        if scope["path"] != "/favicon.ico":  # the browser asks for it on its own
            self.seen.append((scope["path"], query))
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"<p>back at the application</p>"})

    def start(self) -> Landing:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
