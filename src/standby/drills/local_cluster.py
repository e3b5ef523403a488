"""A two-site cluster on this machine for drills and the demo (written by
``cluster.scaffold``): site configs sharing one set of secrets and one public URL (the
traffic layer's), a topology with the embedded DCS and the builtin router or HAProxy
(then its haproxy.cfg too), free loopback ports."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from standby.cluster.scaffold import SiteSpec, write_cluster
from standby.settings import load_secrets, load_settings

# Fast but real argon2id for the demo's users: a login costs milliseconds, not the
# production default's ~50 ms, so a workload on 2 cores measures failover, not hashing.
DEMO_PASSWORDS = {"time_cost": 1, "memory_cost": 8192, "parallelism": 1, "min_length": 8}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalCluster:
    root: Path
    topology: Path
    sites: dict[str, Path]  # name -> config file
    urls: dict[str, str]
    controller_url: str
    router_url: str
    admin_token: str
    replication_secret: str
    primary: str
    standby: str
    traffic: str = "builtin"  # or "haproxy"
    haproxy_config: Path | None = None
    haproxy_socket: str | None = None
    haproxy_backend: str | None = None

    @property
    def layer(self) -> str:
        """The traffic layer as a person names it."""
        return "HAProxy" if self.traffic == "haproxy" else "the router"


def create_local_cluster(
    root: Path,
    *,
    mode: str = "async",
    lease_ttl: float = 1.0,
    ramp_step_seconds: float = 1.0,
    names: tuple[str, str] = ("site-a", "site-b"),
    traffic: str = "builtin",
) -> LocalCluster:
    """Write everything a local primary + standby cluster needs under ``root``. The
    traffic layer's URL (``traffic``: builtin or haproxy) is the public URL of both
    sites: their one issuer base."""
    from standby.cluster.topology import load_topology
    from standby.store import Store

    root.mkdir(parents=True, exist_ok=True)
    primary, standby = names
    router_url = f"http://127.0.0.1:{free_port()}"
    files = write_cluster(
        root,
        [SiteSpec(n, f"http://127.0.0.1:{free_port()}") for n in names],
        public_url=router_url,
        controller_url=f"http://127.0.0.1:{free_port()}",
        cluster="demo",
        mode=mode,
        site_settings={"password": dict(DEMO_PASSWORDS)},
        controller={
            "lease_ttl": lease_ttl,
            "ramp": [10, 25, 50, 100],
            "ramp_step_seconds": ramp_step_seconds,
        },
        traffic={"health_interval": 0.2},
        traffic_backend=traffic,
    )
    topo, _ = load_topology(files.topology)
    for config in files.configs.values():
        settings = load_settings(config, env={})
        store = Store(settings.store.url, settings.site)
        store.create(role=settings.role)
        store.close()
    secrets = load_secrets(load_settings(files.configs[primary], env={}), env={})
    return LocalCluster(
        root,
        files.topology,
        files.configs,
        files.urls,
        files.controller_url,
        router_url,
        secrets.admin_token.get_secret_value(),
        secrets.replication_secret.get_secret_value(),
        primary,
        standby,
        traffic,
        files.haproxy_config,
        topo.traffic.haproxy.socket if traffic == "haproxy" else None,
        topo.traffic.haproxy.backend if traffic == "haproxy" else None,
    )
