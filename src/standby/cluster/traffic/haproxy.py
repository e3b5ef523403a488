"""HAProxy as the traffic backend: its runtime API over the admin unix socket, and a
config writer for a topology (health checks with ``option httpchk GET /readyz``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from standby.cluster.topology import Topology
from standby.cluster.traffic.builtin import listen_address

ServerState = Literal["ready", "drain", "maint"]


class HaproxyError(RuntimeError):
    pass


def parse_servers_state(text: str) -> list[dict[str, str]]:
    """Rows of ``show servers state``: a version line, a ``# field ...`` header, then rows."""
    fields: list[str] = []
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            fields = line.lstrip("#").split()
            continue
        if not fields:
            continue  # the format version line
        values = line.split()
        rows.append(dict(zip(fields, values, strict=False)))
    return rows


class HaproxyBackend:
    """TrafficBackend driving HAProxy through ``stats socket ... level admin``."""

    def __init__(self, socket_path: str, backend: str, timeout: float = 2.0) -> None:
        self.socket_path = socket_path
        self.backend = backend
        self.timeout = timeout

    async def command(self, line: str) -> str:
        """Send one runtime API command; HAProxy answers and closes the connection."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.socket_path), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            raise HaproxyError(f"HAProxy admin socket {self.socket_path}: {exc}") from exc
        try:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), self.timeout)
        finally:
            writer.close()
        text = data.decode(errors="replace")
        lowered = text.lower()
        if "unknown command" in lowered or "no such" in lowered or "permission denied" in lowered:
            raise HaproxyError(f"HAProxy refused {line!r}: {text.strip()}")
        return text

    async def set_weights(self, weights: dict[str, int]) -> None:
        for site, weight in weights.items():
            await self.command(f"set server {self.backend}/{site} weight {int(weight)}")

    async def weights(self) -> dict[str, int]:
        return {row["srv_name"]: int(row["srv_uweight"]) for row in await self.servers()}

    async def set_state(self, site: str, state: ServerState) -> None:
        await self.command(f"set server {self.backend}/{site} state {state}")

    async def servers(self) -> list[dict[str, str]]:
        text = await self.command(f"show servers state {self.backend}")
        return [r for r in parse_servers_state(text) if r.get("be_name") == self.backend]


def render_config(
    topology: Topology,
    socket_path: str | None = None,
    *,
    check_interval_ms: int | None = None,
    pidfile: str | None = None,
) -> str:
    """haproxy.cfg for a topology: frontend at traffic.listen, one server per site with
    HTTP health checks of /readyz, a sticky cookie, and an admin-level runtime socket."""
    traffic = topology.traffic
    host, port = listen_address(traffic.listen)
    sock = socket_path or traffic.haproxy.socket
    inter = check_interval_ms or max(50, int(traffic.health_interval * 1000))
    lines = [
        "global",
        f"    stats socket {sock} mode 600 level admin",
        "    maxconn 4096",
    ]
    if pidfile:
        lines.append(f"    pidfile {pidfile}")
    lines += [
        "",
        "defaults",
        "    mode http",
        "    option forwardfor",
        "    option redispatch",
        "    retries 1",
        "    timeout connect 1s",
        "    timeout client 60s",
        "    timeout server 60s",
        # a health check may take longer than its interval on a busy site (without this
        # the interval is the check's timeout, and a slow /readyz marks every site down)
        "    timeout check 2s",
        "",
        "frontend standby_in",
        f"    bind {host}:{port}",
        f"    default_backend {traffic.haproxy.backend}",
        "",
        f"backend {traffic.haproxy.backend}",
        "    balance roundrobin",
        "    option httpchk GET /readyz",
        "    http-check expect status 200",
        f"    cookie {traffic.sticky_cookie} insert indirect nocache",
    ]
    for site in topology.sites:
        parts = urlsplit(site.url)
        weight = 100 if site.role == "primary" else 0
        lines.append(
            f"    server {site.name} {parts.hostname}:{parts.port} weight {weight} "
            f"check inter {inter} fall 2 rise 1 cookie {site.name}"
        )
    return "\n".join(lines) + "\n"


def write_config(topology: Topology, path: Path, socket_path: str | None = None) -> Path:
    path.write_text(render_config(topology, socket_path))
    return path
