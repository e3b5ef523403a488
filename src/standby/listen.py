"""Serving on a socket bound before anything else happens.

A server binds its port first, then does its start-up work (opening the store, making a
signing key, recording that it started) and serves on the socket it already holds: a
busy port is one clear line naming the setting to change, and a server that could not
listen has done nothing.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

import uvicorn


class ListenError(Exception):
    """The address cannot be listened on; the message names the setting to change."""


def bind(host: str, port: int, setting: str) -> socket.socket:
    """A listening TCP socket on ``host:port``; ``setting`` says where the port is set
    (e.g. "http.port in site.yaml") for the error a person reads."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        # create_server sets SO_REUSEADDR: a port left in TIME_WAIT by a previous run is free.
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            why = "is already in use (another process listens there)"
        else:
            why = f"cannot be listened on: {exc.strerror or exc}"
        raise ListenError(f"{host}:{port} {why}; stop that process or change {setting}") from None


def serve(app: Any, sock: socket.socket, **config: Any) -> None:
    """Run ``app`` under uvicorn on the already-bound ``sock``."""
    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **config))
    server.run(sockets=[sock])
