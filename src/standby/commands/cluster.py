"""`standby controller | failover | switchover | failback | status | events`: the cluster."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from standby.output import emit, fail, table

TopologyOpt = Annotated[
    Path, typer.Option("--topology", "-t", help="topology file", envvar="STANDBY_TOPOLOGY")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _load(topology: Path) -> tuple[Any, Any]:
    from standby.cluster.topology import load_topology
    from standby.settings import ConfigError

    try:
        return load_topology(topology)
    except ConfigError as exc:
        fail(str(exc), 2)
        raise


def _call(
    topology: Path,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    topo, secrets = _load(topology)
    url = topo.controller.url.rstrip("/")
    headers = {"Authorization": f"Bearer {secrets.admin_token.get_secret_value()}"}
    try:
        resp = httpx.request(method, f"{url}{path}", json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the controller at {url}: {exc}; is `standby controller` running?")
        raise
    try:
        data: dict[str, Any] = resp.json()
    except ValueError:
        data = {"message": resp.text[:300]}
    if resp.status_code != 200:
        fail(f"controller: {data.get('message') or resp.status_code}")
    return data


def controller(topology: TopologyOpt) -> None:
    """Run the controller: health checks, failover, lease grants, operator commands."""
    from standby import listen
    from standby.cluster.api import create_app
    from standby.cluster.controller import Controller, make_traffic
    from standby.cluster.dcs import DcsError, make_dcs
    from standby.cluster.events import EventLog, events_path

    topo, secrets = _load(topology)
    url = httpx.URL(topo.controller.url)
    try:
        # Bound before the controller starts: one that cannot listen (a second controller
        # on the same address) must record nothing, not even that it started.
        sock = listen.bind(
            url.host or "127.0.0.1", url.port or 7000, f"controller.url in {topology}"
        )
        dcs = make_dcs(topo.controller.dcs)
    except (listen.ListenError, DcsError) as exc:
        fail(str(exc), 2)
        return
    logging.basicConfig(level="INFO", format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per check is noise
    events = EventLog(events_path(topo.controller.dcs.path))
    ctl = Controller(topo, secrets, dcs, events=events, traffic=make_traffic(topo, secrets))
    listen.serve(create_app(ctl, secrets), sock, log_level="warning", access_log=False)


def failover(
    topology: TopologyOpt,
    approve: Annotated[bool, typer.Option("--approve", help="approve the pending failover")],
    json_out: JsonOpt = False,
) -> None:
    """Approve a failover the controller detected and is waiting on (approval mode)."""
    if not approve:
        fail("say --approve to approve the failover the controller is waiting on", 2)
    data = _call(topology, "POST", "/failover/approve")
    emit(data, json_out, f"approved: failover to [bold]{data.get('target')}[/] proceeds")


def switchover(
    topology: TopologyOpt,
    to: Annotated[str, typer.Option("--to", help="the standby site to make primary")],
    json_out: JsonOpt = False,
) -> None:
    """Planned role change: stop writes, wait for zero lag, check, promote; nothing lost."""
    data = _call(topology, "POST", "/switchover", {"to": to}, timeout=120.0)
    emit(
        data,
        json_out,
        f"switched over: [bold]{data['primary']}[/] is primary on epoch "
        f"{data['epoch']} ({data['seconds']} s, head lsn {data['head_lsn']})",
    )


def failback(
    topology: TopologyOpt,
    to: Annotated[str, typer.Option("--to", help="the site to return the primary role to")],
    json_out: JsonOpt = False,
) -> None:
    """Catch up, check consistency, switch over, then ramp traffic with health gates."""
    data = _call(topology, "POST", "/failback", {"to": to}, timeout=300.0)
    ramp = data.get("ramp") or {}
    emit(
        data,
        json_out,
        f"failback to [bold]{data['primary']}[/]: ramp {ramp.get('state')} "
        f"at {ramp.get('percent')} % ({data['seconds']} s)",
    )


def status(topology: TopologyOpt, json_out: JsonOpt = False) -> None:
    """Roles, epoch, lag, lease; each site's weight and server state in the traffic layer
    (HAProxy's own view), as the controller sees them."""
    data = _call(topology, "GET", "/status")
    if json_out:
        emit(data, True)
        return
    emit(
        data,
        False,
        f"cluster {data['cluster']}: primary [bold]{data['primary']}[/] on epoch "
        f"{data['epoch']} ({data['mode']}); {_lease_line(data.get('lease') or {})}",
    )
    emit(data, False, _issuer_line(data.get("issuers") or {}))
    emit(data, False, _traffic_line(data))
    servers = data.get("traffic_servers") or {}
    rows = [{**s, **_server_columns(servers.get(s["name"]))} for s in data["sites"]]
    table(
        rows,
        ["name", "role", "epoch", "ready", "down", "lag_records", "lag_seconds"]
        + ["weight", "state", "check"],
    )
    for s in data["sites"]:
        for kind, colour, found in (
            ("not ready", "red", "problems"),
            ("warning", "yellow", "warnings"),
        ):
            for check, why in (s.get(found) or {}).items():
                emit(data, False, f"[{colour}]{s['name']} {kind}[/] ({check}): {why}")
    for key in ("failover", "awaiting_approval", "busy", "ramp"):
        if data.get(key):
            emit(data, False, f"{key}: {data[key]}")


def _traffic_line(data: dict[str, Any]) -> str:
    backend = data.get("traffic_backend") or "traffic"
    if data.get("traffic_servers") is None:
        return (
            f"[red]{backend}: not reachable[/] (see `standby events` for the error); "
            "weights and states unknown"
        )
    if backend == "haproxy":
        return (
            "haproxy, as it reports each server: weight, state (ready / drain / maint, "
            "set by the controller) and its own /readyz check"
        )
    return f"{backend} router, as it reports each site: weight and its own /readyz check"


def _server_columns(view: dict[str, Any] | None) -> dict[str, Any]:
    if view is None:
        return {"weight": None, "state": None, "check": None}
    return {"weight": view.get("weight"), "state": view.get("admin"), "check": view.get("op")}


def _lease_line(lease: dict[str, Any]) -> str:
    expires = lease.get("expires_in")
    if isinstance(expires, int | float) and expires < 0:
        holder = lease.get("holder")
        return (
            f"[red]lease of {holder} lapsed {-expires} s ago[/] (is {holder} running, "
            "and does its config name this controller in cluster.controller_url? "
            "`standby cluster init` writes it)"
        )
    return f"lease {lease.get('holder')} expires in {expires} s"


def _issuer_line(info: dict[str, Any]) -> str:
    if not info.get("sites"):
        return "issuer: no site has reported one yet"
    if not info.get("same"):
        each = ", ".join(f"{n} {b}" for n, b in sorted(info["sites"].items()))
        return (
            f"[red]issuers differ[/]: {each}; relying parties reject tokens after a "
            "failover: set the same http.public_url on every site"
        )
    line = f"issuer: {info['issuer_base']}/t/<tenant> on every site"
    if info.get("public_url_unset"):
        line += (
            f" [yellow](http.public_url unset on {', '.join(info['public_url_unset'])}: "
            "the issuer is a site's own address)[/]"
        )
    return line


def events(topology: TopologyOpt, json_out: JsonOpt = False) -> None:
    """The controller's timeline: every decision and action, oldest first."""
    data = _call(topology, "GET", "/events")
    if json_out:
        emit(data, True)
        return
    rows = []
    for e in data["events"]:
        at = dt.datetime.fromtimestamp(e["at"], dt.UTC).strftime("%H:%M:%S.%f")[:-3]
        rest = {k: v for k, v in e.items() if k not in ("seq", "at", "t", "kind")}
        rows.append(
            {
                "at": at,
                "t": e["t"],
                "event": e["kind"],
                "detail": " ".join(f"{k}={v}" for k, v in rest.items())[:160],
            }
        )
    table(rows, ["at", "t", "event", "detail"], title="controller events")


def register(app: typer.Typer) -> None:
    app.command("controller")(controller)
    app.command("failover")(failover)
    app.command("switchover")(switchover)
    app.command("failback")(failback)
    app.command("status")(status)
    app.command("events")(events)
