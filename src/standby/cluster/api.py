"""The controller's HTTP API: lease renewals from sites, status and commands for operators.

Sites authenticate with the cluster's replication secret, operators with the admin
token; /status and /events accept either.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from standby.cluster.controller import Controller, ControllerError
from standby.cluster.topology import ClusterSecrets
from standby.crypto import constant_time_equals


class Renewal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: str = Field(min_length=1, max_length=64)
    epoch: int = Field(ge=0)


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(min_length=1, max_length=64)


def _token(request: Request) -> str:
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def create_app(controller: Controller, secrets: ClusterSecrets) -> FastAPI:
    replication = secrets.replication_secret.get_secret_value()
    admin = secrets.admin_token.get_secret_value()

    def require(request: Request, *allowed: str) -> None:
        token = _token(request)
        # Compare against every allowed secret so timing does not say which one matched.
        matches = [constant_time_equals(token, s) for s in allowed]
        if not token or not any(matches):
            raise ControllerError("missing or wrong credentials (Authorization: Bearer ...)", 401)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await controller.start()
        loop = asyncio.create_task(controller.run())
        try:
            yield
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
            await controller.close()

    app = FastAPI(title="Standby controller", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.exception_handler(ControllerError)
    async def _controller_error(_: Request, exc: ControllerError) -> JSONResponse:
        code = {401: "unauthorized", 400: "invalid_request"}.get(exc.status, "conflict")
        return JSONResponse({"error": code, "message": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        msg = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": "invalid_request", "message": msg}, status_code=400)

    @app.post("/lease/renew")
    async def renew(body: Renewal, request: Request) -> dict[str, Any]:
        require(request, replication)
        return controller.renew(body.site, body.epoch)

    @app.get("/status")
    async def status(request: Request) -> dict[str, Any]:
        require(request, admin, replication)
        return controller.status()

    @app.get("/events")
    async def events(request: Request, after: int = 0, limit: int = 1000) -> dict[str, Any]:
        require(request, admin, replication)
        return {"events": controller.events.since(after, max(1, min(limit, 10000)))}

    @app.post("/failover/approve")
    async def approve(request: Request) -> dict[str, Any]:
        require(request, admin)
        return await controller.approve()

    @app.post("/switchover")
    async def switchover(body: Target, request: Request) -> dict[str, Any]:
        require(request, admin)
        return await controller.switchover(body.to)

    @app.post("/failback")
    async def failback(body: Target, request: Request) -> dict[str, Any]:
        require(request, admin)
        return await controller.failback(body.to)

    return app
