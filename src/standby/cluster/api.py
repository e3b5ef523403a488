"""The controller's HTTP API: lease renewals from sites, status and commands for operators.

Sites authenticate with the cluster's replication secret, operators with the admin
token; /status and /events accept either.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from standby.cluster.controller import Controller, ControllerError
from standby.cluster.topology import ClusterSecrets
from standby.crypto import constant_time_equals
from standby.openapi import errors, json_body
from standby.request_body import describe_problem, read_json


class Renewal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: str = Field(min_length=1, max_length=64)
    epoch: int = Field(ge=0)


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(min_length=1, max_length=64)


# An operator's order, read only once the caller is authenticated.
Order = Annotated[Target, Depends(read_json(Target))]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


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

    def needs(*allowed: str) -> list[Any]:
        """Route dependencies checking credentials, which run before a body is read."""

        def check(request: Request) -> None:
            require(request, *allowed)

        return [Depends(check)]

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
        msg = "; ".join(describe_problem(e) for e in exc.errors())
        return JSONResponse({"error": "invalid_request", "message": msg}, status_code=400)

    @app.post(
        "/lease/renew",
        dependencies=needs(replication),
        responses=errors(400, 401),
        openapi_extra=json_body(Renewal),
    )
    async def renew(body: Annotated[Renewal, Depends(read_json(Renewal))]) -> dict[str, Any]:
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

    def order(path: str) -> Callable[[Endpoint], Endpoint]:
        """An operator's order naming a site: the admin token first, then the body."""
        return app.post(
            path,
            dependencies=needs(admin),
            responses=errors(400, 401, 409),
            openapi_extra=json_body(Target),
        )

    @order("/switchover")
    async def switchover(body: Order) -> dict[str, Any]:
        return await controller.switchover(body.to)

    @order("/failback")
    async def failback(body: Order) -> dict[str, Any]:
        return await controller.failback(body.to)

    return app
