"""JSON request bodies: read after the caller is authenticated, and what is wrong with
one said plainly.

FastAPI parses and validates a body parameter before any dependency runs, so a route
that checks credentials in a dependency still answers 400 to an unauthenticated caller
who sends a malformed body (telling them what the route expects). Declaring the body as
``Annotated[Model, Depends(read_json(Model))]`` after the auth dependency reads it only once
the caller is known; errors are the same 400 as FastAPI's (RequestValidationError).
Declare it in the document with ``openapi_extra=standby.openapi.json_body(Model)``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def read_json(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency that reads the request's JSON body as ``model``."""

    async def read(request: Request) -> M:
        raw = await request.body()
        if not raw:
            raise RequestValidationError(
                [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
            )
        try:
            data = json.loads(raw)
        except ValueError as exc:
            pos = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
            why = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", pos),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": why},
                    }
                ]
            ) from None
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            ) from None

    return read


def describe_problem(err: Any) -> str:
    """One validation error for a person: a body that is not a JSON object is named as
    such (pydantic says "JSON decode error" or "valid dictionary"); a field by its path."""
    loc = tuple(err.get("loc", ()))
    if err.get("type") == "json_invalid":
        why = (err.get("ctx") or {}).get("error") or "not valid JSON"
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        return f"the body must be a JSON object; it is not valid JSON ({why}{at})"
    if loc == ("body",):
        missing = err.get("type") == "missing"
        return "the body must be a JSON object" + (" and the request has none" if missing else "")
    path = ".".join(str(p) for p in loc if p != "body")
    return f"{path or 'body'}: {err.get('msg')}"
