"""A two-site cluster on this machine for drills and the demo: site configs sharing one set
of secrets, a topology with the embedded DCS and the builtin router, free loopback ports."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from standby.settings import load_secrets, load_settings, write_site

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


def create_local_cluster(
    root: Path,
    *,
    mode: str = "async",
    lease_ttl: float = 1.0,
    ramp_step_seconds: float = 1.0,
    names: tuple[str, str] = ("site-a", "site-b"),
) -> LocalCluster:
    """Write everything a local primary + standby cluster needs under ``root``."""
    from standby.store import Store

    root.mkdir(parents=True, exist_ok=True)
    primary, standby = names
    ports = {primary: free_port(), standby: free_port()}
    urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    controller_url = f"http://127.0.0.1:{free_port()}"
    router_url = f"http://127.0.0.1:{free_port()}"
    configs: dict[str, Path] = {}
    secrets_from: Path | None = None
    for name in (primary, standby):
        other = standby if name == primary else primary
        overrides: dict[str, Any] = {
            "role": "primary" if name == primary else "standby",
            "http": {"host": "127.0.0.1", "port": ports[name]},
            "password": dict(DEMO_PASSWORDS),
            "replication": {"mode": mode},
            "cluster": {
                "controller_url": controller_url,
                "lease_ttl": lease_ttl,
                "peer_urls": [urls[other]],
            },
        }
        if name == standby:
            overrides["replication"]["primary_url"] = urls[primary]
        config, secrets_path = write_site(root / name, name, overrides, secrets_from)
        secrets_from = secrets_from or secrets_path
        configs[name] = config
        settings = load_settings(config, env={})
        store = Store(settings.store.url, settings.site)
        store.create(role=settings.role)
        store.close()
    settings = load_settings(configs[primary], env={})
    secrets = load_secrets(settings, env={})
    admin = secrets.admin_token.get_secret_value()
    repl = secrets.replication_secret.get_secret_value()
    cluster_secrets = root / "cluster-secrets.yaml"
    fd = os.open(cluster_secrets, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump({"replication_secret": repl, "admin_token": admin}, fh)
    topology = {
        "cluster": "demo",
        "secrets_file": "cluster-secrets.yaml",
        "controller": {
            "url": controller_url,
            "failover": "automatic",
            "lease_ttl": lease_ttl,
            "dcs": {"backend": "embedded", "path": "controller.db"},
            "ramp": [10, 25, 50, 100],
            "ramp_step_seconds": ramp_step_seconds,
        },
        "traffic": {"backend": "builtin", "listen": router_url, "health_interval": 0.2},
        "sites": [
            {
                "name": n,
                "url": urls[n],
                "role": "primary" if n == primary else "standby",
                "config": str(configs[n]),
            }
            for n in (primary, standby)
        ],
    }
    topology_path = root / "topology.yaml"
    topology_path.write_text(yaml.safe_dump(topology, sort_keys=False))
    return LocalCluster(
        root,
        topology_path,
        configs,
        urls,
        controller_url,
        router_url,
        admin,
        repl,
        primary,
        standby,
    )
