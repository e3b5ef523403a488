"""`standby traffic haproxy-config`: write the haproxy.cfg the controller drives."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from standby.commands.cluster import JsonOpt, TopologyOpt, _load
from standby.output import emit, err_console, fail

traffic_app = typer.Typer(help="The traffic layer in front of the sites.", no_args_is_help=True)

DCS_READ_TIMEOUT = 3.0


def _primary_from_dcs(topo: Any) -> tuple[str | None, int | None, str | None]:
    """(primary, epoch, note): the DCS's leader, or None and why it could not be used."""
    from standby.cluster.dcs import DcsError, read_leader

    names = [s.name for s in topo.sites]
    try:
        leader = asyncio.run(asyncio.wait_for(read_leader(topo.controller.dcs), DCS_READ_TIMEOUT))
    except (DcsError, TimeoutError, OSError, ValueError) as exc:
        return None, None, f"the controller's DCS is not readable ({exc or type(exc).__name__})"
    if leader is None:
        return None, None, "the controller's DCS names no primary yet"
    if leader.primary not in names:
        return None, None, f"the DCS names {leader.primary!r}, which is not in the topology"
    return leader.primary, leader.epoch, None


def _check(binary: str, path: Path) -> str | None:
    """HAProxy's own verdict on the file (None: valid)."""
    got = subprocess.run(
        [binary, "-c", "-q", "-f", str(path)], capture_output=True, text=True, timeout=30
    )
    return None if got.returncode == 0 else (got.stdout + got.stderr).strip()[-800:]


def _write(path: Path, text: str) -> None:
    """Replace the file whole (a reload never reads half a config)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@traffic_app.command("haproxy-config")
def haproxy_config(
    topology: TopologyOpt,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="write here (replaced whole); default: print it"),
    ] = None,
    log: Annotated[
        str,
        typer.Option(help="where HAProxy logs: stdout, stderr, /dev/log or a syslog host:port"),
    ] = "stdout",
    json_out: JsonOpt = False,
) -> None:
    """haproxy.cfg for the topology: /readyz health checks, sticky cookie, admin socket,
    log line, timeouts, the request hold; the site the DCS names primary takes the
    traffic."""
    from standby.cluster.traffic.haproxy_config import HOLD_FILE, HOLD_LUA, log_line, render_config

    topo, _ = _load(topology)
    if topo.traffic.backend != "haproxy":
        fail(
            f"{topology}: traffic.backend is {topo.traffic.backend!r}, so the controller "
            "drives the builtin router, not HAProxy; set traffic.backend: haproxy first",
            2,
        )
    try:
        log_line(log)
    except ValueError as exc:
        fail(f"--log: {exc}", 2)
    primary, epoch, note = _primary_from_dcs(topo)
    source = "dcs"
    if primary is None:
        primary = next(s.name for s in topo.sites if s.role == "primary")
        source = "topology"
        note = (
            f"{note}: {primary} takes the traffic as the topology's primary; the controller "
            "corrects HAProxy's weights and states when it runs"
        )
    hold = out.resolve().with_name(HOLD_FILE) if out is not None else None
    if hold is None and topo.traffic.hold_s > 0:
        held = "no request hold in a printed config: --out writes it, with its Lua file"
        note = f"{note}; {held}" if note else held
    text = render_config(topo, primary=primary, log=log, hold_lua=hold)
    result: dict[str, Any] = {
        "primary": primary,
        "epoch": epoch,
        "weights_from": source,
        "note": note,
        "socket": topo.traffic.haproxy.socket,
        "backend": topo.traffic.haproxy.backend,
        "path": None,
        "hold": None,
        "checked_by_haproxy": False,
    }
    if out is None:
        if note:
            err_console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
        if json_out:
            emit({**result, "config": text}, True)
        else:
            sys.stdout.write(text)
        return
    try:
        if hold is not None and topo.traffic.hold_s > 0:
            _write(hold, HOLD_LUA)
            result["hold"] = {"lua": str(hold), "seconds": topo.traffic.hold_s}
        _write(out, text)
    except OSError as exc:
        fail(f"cannot write {out}: {exc}", 1)
    binary = shutil.which("haproxy")
    if binary is not None:
        problem = _check(binary, out)
        if problem:
            fail(f"{out}: haproxy -c refused the config written: {problem}", 1)
        result["checked_by_haproxy"] = True
    result["path"] = str(out)
    where = f"the DCS's primary on epoch {epoch}" if source == "dcs" else "the topology"
    human = (
        f"wrote {out}: [bold]{primary}[/] takes the traffic ({where}); the controller "
        f"drives HAProxy at {topo.traffic.haproxy.socket}, backend "
        f"{topo.traffic.haproxy.backend}"
    )
    if note:
        human += f"\n[yellow]note:[/] {note}"
    emit(result, json_out, human)


def register(app: typer.Typer) -> None:
    app.add_typer(traffic_app, name="traffic")
