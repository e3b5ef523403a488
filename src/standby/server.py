"""The site's app factory: mounts each part's routes, owns the site's role and epoch.

A ``Site`` is everything one running site holds for its lifetime: settings, secrets,
store, metrics, and the background tasks the parts register (replication applier,
lease renewal, backup schedule). Routes reach it through ``request.app.state.site``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request
from fastapi import routing as fastapi_routing
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from standby import openapi
from standby.errors import REFUSED_BEFORE_WRITE, REFUSED_HEADER, ApiError
from standby.metrics import Metrics
from standby.request_body import describe_problem
from standby.settings import Secrets, SiteSettings
from standby.store import Conflict, NotWritable, Store, StoreError

log = logging.getLogger("standby.server")

BackgroundTask = Callable[["Site"], Coroutine[Any, Any, None]]


class Site:
    """One running site: its configuration, store, role, epoch and background work."""

    def __init__(self, settings: SiteSettings, secrets: Secrets, store: Store | None = None):
        self.settings = settings
        self.secrets = secrets
        self.name = settings.site
        self.store = store or Store(settings.store.url, settings.site)
        self.store.write_guard = self.check_writable
        self.metrics = Metrics()
        self.role = self.store.role
        self.epoch = self.store.epoch
        self.started_at = time.time()
        self.background: list[BackgroundTask] = []
        # Extra guards other parts add (lease held, not fenced); each raises NotWritable.
        self.write_guards: list[Callable[[], None]] = []
        # Readiness checks parts add: name -> callable returning None if fine, else why not.
        self.readiness: dict[str, Callable[[], str | None]] = {}
        # Things an operator should fix that do not stop this site serving: name -> why.
        self.warnings: dict[str, str] = {}
        # Shared objects other parts hang on the site (keyring, replication state, ...).
        self.parts: dict[str, Any] = {}
        self.metrics.gauge_callback(
            "standby_changelog_head_lsn",
            "Last LSN in this site's change log",
            lambda: float(self.store.head().lsn),
        )
        self.metrics.gauge_callback(
            "standby_epoch", "This site's epoch (timeline)", lambda: float(self.epoch)
        )

    def check_writable(self) -> None:
        if self.role != "primary":
            self.metrics.writes_refused.inc()
            primary = self.settings.replication.primary_url or "the primary site"
            raise NotWritable(f"site {self.name!r} is a {self.role}; send writes to {primary}")
        for guard in self.write_guards:
            try:
                guard()
            except NotWritable:
                self.metrics.writes_refused.inc()
                raise

    def set_role(self, role: str, epoch: int | None = None) -> None:
        """Change role/epoch in memory and in the store (site-local metadata)."""
        if epoch is not None:
            self.store.set_meta("epoch", str(epoch))
            self.epoch = epoch
        self.store.set_meta("role", role)
        self.role = role
        log.info(
            json.dumps(
                {"event": "role_changed", "site": self.name, "role": role, "epoch": self.epoch}
            )
        )


def _error_response(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        resp = JSONResponse(exc.body(), status_code=exc.status)
        resp.headers.update(exc.headers)
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [describe_problem(err) for err in exc.errors()]
        return _error_response(400, "invalid_request", "; ".join(problems) or "malformed request")

    @app.exception_handler(NotWritable)
    async def _not_writable(request: Request, exc: NotWritable) -> JSONResponse:
        resp = _error_response(503, "not_writable", str(exc))
        resp.headers["Retry-After"] = "1"
        if not exc.committed:
            # Nothing changed here: a traffic layer may send the request to the primary.
            resp.headers[REFUSED_HEADER] = REFUSED_BEFORE_WRITE
        return resp

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return _error_response(409, "conflict", str(exc))

    @app.exception_handler(StoreError)
    async def _store_error(_: Request, exc: StoreError) -> JSONResponse:
        log.error(json.dumps({"event": "store_error", "error": str(exc)}))
        return _error_response(500, "store_error", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        message = str(exc.detail)
        if exc.status_code == 405:
            # A 405 must say what is allowed; Starlette's Allow names only the first route
            # on the path, and a path may have one route per method.
            headers["Allow"] = ", ".join(_allowed(request)) or headers.get("Allow", "")
            message = f"{request.method} is not allowed here; use {headers['Allow']}"
        resp = _error_response(exc.status_code, code, message)
        resp.headers.update(headers)
        return resp


def _allowed(request: Request) -> list[str]:
    """The methods some route of the app serves on the request's path."""
    flatten = getattr(fastapi_routing, "iter_route_contexts", None)  # routers included lazily
    routes = flatten(request.app.routes) if flatten else request.app.routes
    methods: set[str] = set()
    for route in routes:
        regex, served = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and served and regex.match(request.url.path):
            methods |= set(served)
    return sorted(methods)


def create_app(site: Site) -> FastAPI:
    """Build the ASGI app for a site, with every part's routes mounted."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(job(site)) for job in site.background]
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    app = FastAPI(title="Standby", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.site = site
    _install_error_handlers(app)
    openapi.install(app)

    @app.middleware("http")
    async def _site_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > site.settings.http.max_body_bytes:
            response: Response = _error_response(
                413,
                "payload_too_large",
                f"request body over {site.settings.http.max_body_bytes} bytes",
            )
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        site.metrics.requests.labels(request.method, path, str(response.status_code)).inc()
        site.metrics.latency.labels(path).observe(time.perf_counter() - started)
        response.headers["Standby-Site"] = site.name
        response.headers["Standby-Epoch"] = str(site.epoch)
        response.headers["Standby-Role"] = site.role
        return response

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {
            "status": "alive",
            "site": site.name,
            "role": site.role,
            "epoch": site.epoch,
            # Public facts (discovery names the issuer too); a new standby's `init` asks.
            "public_url": site.settings.http.public_url,
            "issuer_base": site.settings.base_url(),
        }

    @app.get("/readyz", responses={503: {"description": "not ready: problems says why"}})
    def readyz() -> JSONResponse:
        problems: dict[str, str] = {}
        try:
            site.store.head()
            if site.role == "primary":
                site.store.set_meta("ready_probe", str(time.time()))
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure as a reason
            problems["store"] = f"store not readable/writable: {exc}"
        for name, check in site.readiness.items():
            try:
                why = check()
            except Exception as exc:  # noqa: BLE001
                why = f"check failed: {exc}"
            if why:
                problems[name] = why
        body = {
            "ready": not problems,
            "site": site.name,
            "role": site.role,
            "epoch": site.epoch,
            "problems": problems,
            "warnings": site.warnings,
        }
        return JSONResponse(body, status_code=200 if not problems else 503)

    @app.get("/metrics")
    def metrics() -> PlainTextResponse:
        site.metrics.info.clear()
        site.metrics.info.labels(site.name, site.role).set(site.epoch)
        return PlainTextResponse(
            site.metrics.render().decode(), media_type="text/plain; version=0.0.4"
        )

    for mount in _part_mounts():
        mount(app, site)
    return app


def _part_mounts() -> list[Callable[[FastAPI, Site], None]]:
    """Each part's ``mount(app, site)``: adds its routes, background tasks and checks.

    Imported here, not at the top: the parts import ``Site`` from this module. The lease
    comes before the parts whose start-up work writes (signing keys, archiving), so its
    first renewal is under way when they first try to write.
    """
    from standby import backup, logtrim, replication
    from standby.cluster import lease
    from standby.identity import mount as identity_mount
    from standby.identity import oidc

    return [
        identity_mount,
        replication.mount,
        lease.mount,
        oidc.mount,
        backup.mount,
        logtrim.mount,
    ]


def build_site(settings: SiteSettings, secrets: Secrets) -> tuple[Site, FastAPI]:
    store = Store(settings.store.url, settings.site)
    store.create(role=settings.role)
    site = Site(settings, secrets, store)
    return site, create_app(site)
