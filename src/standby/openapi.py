"""What the API document (/openapi.json) says, made true.

FastAPI infers 200/201 and a 422 for every route with input, but Standby answers bad
input with 400 ``{error, message}`` and raises its other errors (401, 403, 404, 409,
423, 503) as exceptions it cannot see; the OAuth endpoints read their form bodies
themselves. So:

- routes declare the errors they answer with ``responses=errors(...)``;
- a JSON body read after authentication (``standby.request_body``) is declared with
  ``openapi_extra=json_body(Model)``;
- ``install(app)`` makes the document: 422 dropped (never answered), 413 added wherever
  a body is read, and the OAuth routes (their module reads forms by hand) given their
  form bodies and errors here, by path.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "stable machine code"},
        "message": {"type": "string", "description": "what went wrong, for a person"},
    },
}

DESCRIPTIONS = {
    400: "bad input (invalid_request and the like); message says what to change",
    401: "missing or wrong credentials",
    403: "authenticated, but not allowed (e.g. account disabled)",
    404: "unknown tenant or object",
    409: "conflicts with what exists (duplicate, not empty, stale epoch)",
    410: "what was asked for is gone here (records trimmed): catch up from the archive",
    413: "request body over http.max_body_bytes",
    423: "account locked after too many failed logins; retry after the lockout",
    502: "a site this one had to ask did not answer",
    503: "not possible on this site now (a standby, fenced, no lease): Retry-After says when",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route or router answering these error statuses."""
    return {
        code: {
            "description": DESCRIPTIONS[code],
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        for code in codes
    }


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra=`` declaring a JSON body that the route reads itself."""
    schema = model.model_json_schema()  # nested models stay in its own $defs
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }


def _form(required: list[str], fields: dict[str, str]) -> dict[str, Any]:
    props = {name: {"type": "string", "description": why} for name, why in fields.items()}
    schema = {"type": "object", "required": required, "properties": props}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": schema}},
        }
    }


# Client authentication in the body (RFC 6749 2.3.1, RFC 7523); HTTP Basic works too.
_CLIENT_AUTH = {
    "client_id": "the client (public clients, client_secret_post)",
    "client_secret": "client_secret_post",
    "client_assertion_type": "private_key_jwt: the JWT bearer assertion type (RFC 7523)",
    "client_assertion": "private_key_jwt: a JWT signed with the client's key",
}
_TOKEN_FORM = {
    "token": "the access or refresh token",
    "token_type_hint": "access_token or refresh_token",
    **_CLIENT_AUTH,
}

# The OAuth routes, by path: their form bodies and the errors they answer.
_OAUTH: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    "/t/{tenant}/token": (
        _form(
            ["grant_type"],
            {
                "grant_type": "authorization_code, refresh_token or client_credentials",
                "code": "authorization_code: the code",
                "redirect_uri": "authorization_code: as sent to /authorize",
                "code_verifier": "authorization_code: the PKCE verifier",
                "refresh_token": "refresh_token: the refresh token",
                "scope": "refresh_token, client_credentials: scopes asked for",
                **_CLIENT_AUTH,
            },
        ),
        (400, 401, 404, 503),
    ),
    "/t/{tenant}/introspect": (_form(["token"], _TOKEN_FORM), (400, 401, 404, 503)),
    "/t/{tenant}/revoke": (_form(["token"], _TOKEN_FORM), (400, 401, 404, 503)),
}
_OAUTH_READS: dict[str, tuple[int, ...]] = {
    "/t/{tenant}/userinfo": (401, 403, 404),
    "/t/{tenant}/jwks": (404,),
    "/t/{tenant}/.well-known/openid-configuration": (404,),
    "/t/{tenant}/.well-known/oauth-authorization-server": (404,),
}


_METHOD_SUFFIX = re.compile(r"_(get|post|put|patch|delete|head|options)$")


def _finish(doc: dict[str, Any]) -> None:
    """Make ``doc`` (FastAPI's document) true; idempotent, so it may run on every call."""
    operation_ids: set[str] = set()
    for path, operations in doc.get("paths", {}).items():
        for method, op in operations.items():
            # A route serving two methods gets one id for both from FastAPI; ids are unique.
            if op.get("operationId") in operation_ids:
                op["operationId"] = f"{_METHOD_SUFFIX.sub('', op['operationId'])}_{method}"
            operation_ids.add(op.get("operationId", ""))
            responses = op.setdefault("responses", {})
            responses.pop("422", None)  # never answered: bad input is a 400
            codes: tuple[int, ...] = _OAUTH_READS.get(path, ())
            if path in _OAUTH:
                form, codes = _OAUTH[path]
                op.setdefault("requestBody", form["requestBody"])
            if "requestBody" in op:
                codes = (*codes, 413)
            for code, answer in errors(*codes).items():
                responses.setdefault(str(code), answer)
    schemas = doc.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def install(app: FastAPI) -> None:
    """Serve the document as described above."""
    generate = app.openapi  # FastAPI's own, which caches what it generates

    def document() -> dict[str, Any]:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Duplicate Operation ID")  # _finish fixes them
            doc = generate()
        _finish(doc)
        return doc

    app.openapi = document  # type: ignore[method-assign]
