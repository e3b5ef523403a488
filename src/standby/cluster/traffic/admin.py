"""The builtin router's admin API under /_router/ (Bearer admin_token)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from standby.cluster.traffic.asgi import Receive, Scope, Send, send_json
from standby.crypto import constant_time_equals

if TYPE_CHECKING:
    from standby.cluster.traffic.builtin import Router

MAX_BODY = 64 * 1024


def _authorized(router: Router, scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            if not token or not router.admin_token:  # an empty secret never matches
                return False
            return scheme.lower() == "bearer" and constant_time_equals(token, router.admin_token)
    return False


async def _read(receive: Receive) -> bytes | None:
    data = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        data += bytes(message.get("body", b""))
        if len(data) > MAX_BODY:
            return None
        if not message.get("more_body", False):
            return data


async def handle_admin(router: Router, scope: Scope, receive: Receive, send: Send) -> None:
    if not _authorized(router, scope):
        await send_json(
            send, 401, {"error": "unauthorized", "message": "Bearer admin_token required"}
        )
        return
    path, method = scope["path"], scope["method"]
    if path == "/_router/weights" and method == "GET":
        await send_json(send, 200, router.weights)
    elif path == "/_router/weights" and method == "PUT":
        raw = await _read(receive)
        try:
            update = json.loads(raw or b"")
            if not isinstance(update, dict):
                raise ValueError("body must be a JSON object {site: weight}")
            await send_json(send, 200, router.set_weights(update))
        except ValueError as exc:
            await send_json(send, 400, {"error": "invalid_weights", "message": str(exc)})
    elif path == "/_router/status" and method == "GET":
        await send_json(send, 200, router.status())
    else:
        await send_json(
            send, 404, {"error": "not_found", "message": f"no admin route {method} {path}"}
        )
