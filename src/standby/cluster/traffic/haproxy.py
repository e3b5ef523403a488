"""HAProxy as the traffic backend: weights and server states over its runtime API (the
admin unix socket). ``haproxy_config.py`` writes the matching haproxy.cfg."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from standby.cluster.traffic.state import AdminState, Change, ServerView, SetState, SetWeight

# ``show servers state``: srv_op_state values, and the srv_admin_state bits that take a
# server out of rotation (forced, inherited, DNS-resolution, hostname maintenance) or
# drain it (forced, inherited). 0x04 alone only says the config started it disabled.
OP_STATES = {"0": "down", "1": "starting", "2": "up", "3": "stopping"}
MAINT_BITS = 0x01 | 0x02 | 0x20 | 0x40
DRAIN_BITS = 0x08 | 0x10


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


def admin_state(flags: str) -> AdminState:
    """ready / drain / maint from ``srv_admin_state`` (a decimal bit field)."""
    bits = int(flags) if flags.isdigit() else 0
    if bits & MAINT_BITS:
        return "maint"
    return "drain" if bits & DRAIN_BITS else "ready"


def server_view(row: dict[str, str]) -> ServerView:
    return ServerView(
        weight=int(row.get("srv_uweight", "0")),
        admin=admin_state(row.get("srv_admin_state", "0")),
        op=OP_STATES.get(row.get("srv_op_state", ""), "unknown"),
    )


class HaproxyBackend:
    """TrafficBackend driving HAProxy through ``stats socket ... level admin``."""

    states = True  # HAProxy has server states (ready / drain / maint)

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
        refusals = ("unknown command", "no such", "can't find", "permission denied")
        if any(r in lowered for r in refusals):
            raise HaproxyError(f"HAProxy refused {line!r}: {text.strip()}")
        return text

    def _line(self, change: Change) -> str:
        server = f"{self.backend}/{change.site}"
        if isinstance(change, SetWeight):
            return f"set server {server} weight {int(change.weight)}"
        return f"set server {server} state {change.state}"

    async def apply(self, changes: Sequence[Change]) -> None:
        """Carry the changes out in order, in one runtime API call (commands separated by
        ';' run one after the other), so traffic moves between servers at once."""
        if not changes:
            return
        line = "; ".join(self._line(c) for c in changes)
        answer = (await self.command(line)).strip()
        if answer:  # `set server` answers nothing when it worked
            raise HaproxyError(f"HAProxy refused {line!r}: {answer}")

    async def set_weights(self, weights: dict[str, int]) -> None:
        await self.apply([SetWeight(site, weight) for site, weight in weights.items()])

    async def weights(self) -> dict[str, int]:
        return {name: view.weight for name, view in (await self.servers()).items()}

    async def set_state(self, site: str, state: AdminState) -> None:
        await self.apply([SetState(site, state)])

    async def servers(self) -> dict[str, ServerView]:
        return {row["srv_name"]: server_view(row) for row in await self.server_rows()}

    async def in_flight(self) -> dict[str, int]:
        """Requests each server is handling now (``scur`` of ``show stat``)."""
        text = await self.command(f"show stat {self.backend} 4 -1")
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines or not lines[0].startswith("#"):
            raise HaproxyError(f"HAProxy answered show stat with {text.strip()[:200]!r}")
        fields = lines[0].lstrip("# ").split(",")
        name, current = fields.index("svname"), fields.index("scur")
        rows = [line.split(",") for line in lines[1:]]
        return {r[name]: int(r[current] or 0) for r in rows if len(r) > current}

    async def server_rows(self) -> list[dict[str, str]]:
        """``show servers state`` of the backend, one dict per server, as HAProxy names the
        fields (srv_name, srv_op_state, srv_admin_state, srv_uweight, ...)."""
        text = await self.command(f"show servers state {self.backend}")
        return [r for r in parse_servers_state(text) if r.get("be_name") == self.backend]
