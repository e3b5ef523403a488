"""`standby cluster init`: write a working cluster — topology, cluster secrets, and a
config + secrets folder for each of N sites, all with one public URL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from standby.output import emit, fail

cluster_app = typer.Typer(help="A whole cluster's files.", no_args_is_help=True)

CHOICES = {
    "traffic": ("builtin", "haproxy"),
    "failover": ("automatic", "approval"),
    "mode": ("async", "sync"),
}


def _pairs(items: list[str] | None, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            fail(f"{option} {item!r}: write it as SITE=VALUE", 2)
        out[name] = value
    return out


@cluster_app.command("init")
def init(
    dir: Annotated[Path, typer.Option("--dir", help="folder for every file of the cluster")],
    public_url: Annotated[
        str,
        typer.Option(
            help="the URL clients use (the router, or a proxy in front of it): every "
            "site's issuer base"
        ),
    ] = "http://127.0.0.1:8000",
    site: Annotated[
        list[str] | None,
        typer.Option(
            help="a site, NAME or NAME=http://HOST:PORT (repeat; the first is the primary; "
            "default site-a, site-b)"
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="port of the first site; the next get +1")] = 8001,
    controller_url: Annotated[str, typer.Option(help="where the controller listens")] = (
        "http://127.0.0.1:7000"
    ),
    listen: Annotated[
        str | None,
        typer.Option(help="where the router listens (default: the public URL itself)"),
    ] = None,
    traffic: Annotated[str, typer.Option(help="traffic layer: builtin or haproxy")] = "builtin",
    failover: Annotated[str, typer.Option(help="automatic or approval")] = "automatic",
    mode: Annotated[str, typer.Option(help="replication mode: async or sync")] = "async",
    store_url: Annotated[
        list[str] | None, typer.Option(help="SITE=URL: that site's store (default: SQLite)")
    ] = None,
    name: Annotated[str, typer.Option(help="the cluster's name")] = "standby",
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Write topology.yaml, cluster-secrets.yaml (mode 0600) and one folder per site."""
    from standby.cluster.scaffold import site_specs, write_cluster
    from standby.settings import ConfigError

    for option, value in (("traffic", traffic), ("failover", failover), ("mode", mode)):
        if value not in CHOICES[option]:
            fail(f"--{option} {value!r}: use {' or '.join(CHOICES[option])}", 2)
    specs = site_specs(site or ["site-a", "site-b"], port)
    try:
        files = write_cluster(
            dir,
            specs,
            public_url=public_url,
            controller_url=controller_url,
            listen=listen,
            cluster=name,
            traffic_backend=traffic,
            failover=failover,
            mode=mode,
            store_urls=_pairs(store_url, "--store-url"),
        )
    except ConfigError as exc:
        fail(str(exc), 2)
        return
    topo = files.topology
    run = [f"haproxy -f {files.haproxy_config}"] if files.haproxy_config else []
    run.append(f"standby controller --topology {topo}")
    if traffic == "builtin":
        run.append(f"standby router --topology {topo}")
    run += [f"standby serve --config {c}" for c in files.configs.values()]
    run.append(f"standby status --topology {topo}")
    emit(
        {
            "topology": str(topo),
            "secrets": str(files.secrets),
            "sites": {
                n: {"config": str(c), "url": files.urls[n]} for n, c in files.configs.items()
            },
            "primary": files.primary,
            "public_url": files.public_url,
            "listen": files.listen,
            "controller_url": files.controller_url,
            "run": run,
        },
        json_out,
        f"wrote {topo}, {files.secrets} (mode 0600) and a folder per site "
        f"({', '.join(files.configs)}; {files.primary} is the primary)\n"
        f"issuers: {files.public_url}/t/<tenant> on every site; traffic: {traffic} at "
        f"{files.listen}\nnext, each in its own terminal:\n  " + "\n  ".join(run),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(cluster_app, name="cluster")
