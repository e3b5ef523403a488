"""`standby router --topology FILE`: run the builtin traffic router."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from standby.output import fail


def router(
    topology: Annotated[Path, typer.Option("--topology", "-t", help="topology file")],
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """Run the builtin router at traffic.listen (admin API under /_router/)."""
    from standby.cluster.topology import load_topology
    from standby.cluster.traffic.builtin import Router, listen_address, make_server
    from standby.settings import ConfigError

    try:
        topo, secrets = load_topology(topology)
        host, port = listen_address(topo.traffic.listen)
    except (ConfigError, ValueError) as exc:
        fail(str(exc), 2)
        return
    if topo.traffic.backend != "builtin":
        fail(f"{topology}: traffic.backend is {topo.traffic.backend!r}; the router is 'builtin'", 2)
    logging.basicConfig(level=log_level.upper(), format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per proxied request
    router_ = Router.from_topology(topo, secrets)
    started = {"event": "router_started", "listen": topo.traffic.listen, "weights": router_.weights}
    logging.getLogger("standby.router").info(json.dumps(started))
    make_server(router_, host, port, log_level="warning").run()


def register(app: typer.Typer) -> None:
    app.command("router")(router)
