"""Write a new cluster's files: one folder per site (config + the shared secrets), the
cluster secrets file the controller and router read, and the topology file.

Every site gets the same public URL (its issuer base), the controller's URL and the
other sites as peers, so a failover changes neither the issuer nor the lease set-up.
Nothing is written until every file has been checked, and nothing is overwritten.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from standby.cluster.topology import Topology, load_topology
from standby.cluster.traffic.haproxy_config import HOLD_FILE, write_config
from standby.settings import (
    ConfigError,
    check_public_url,
    deep_merge,
    load_settings,
    site_config,
    write_site,
)

TOPOLOGY_FILE = "topology.yaml"
SECRETS_FILE = "cluster-secrets.yaml"


@dataclass(frozen=True)
class SiteSpec:
    name: str
    url: str  # where the site itself listens, http://host:port


@dataclass
class ClusterFiles:
    root: Path
    topology: Path
    secrets: Path
    configs: dict[str, Path]  # site name -> its standby.yaml
    urls: dict[str, str]  # site name -> its own URL
    primary: str
    public_url: str
    listen: str  # where the traffic layer listens
    controller_url: str
    haproxy_config: Path | None = None  # written for traffic.backend haproxy


def site_specs(names: Sequence[str], first_port: int, host: str = "127.0.0.1") -> list[SiteSpec]:
    """Sites on consecutive ports of one host; ``name=URL`` gives a site its own URL."""
    specs = []
    for i, item in enumerate(names):
        name, _, url = item.partition("=")
        specs.append(SiteSpec(name.strip(), url.strip() or f"http://{host}:{first_port + i}"))
    return specs


def default_listen(public_url: str) -> str:
    """The router listens on the public URL itself when that is a plain http host:port."""
    parts = urlsplit(public_url)
    if parts.scheme != "http" or not parts.port or parts.path not in ("", "/"):
        raise ConfigError(
            f"the public URL {public_url} is not a plain http://host:port the router can "
            "listen on (a proxy or TLS terminator serves it): say where the router listens "
            "with --listen http://HOST:PORT"
        )
    return f"http://{parts.hostname}:{parts.port}"


def _host_port(spec: SiteSpec) -> tuple[str, int]:
    parts = urlsplit(spec.url)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise ConfigError(f"site {spec.name}: {spec.url!r} is not http://HOST:PORT")
    return parts.hostname, parts.port


def write_cluster(
    root: Path,
    sites: Sequence[SiteSpec],
    *,
    public_url: str,
    controller_url: str,
    listen: str | None = None,
    cluster: str = "standby",
    traffic_backend: str = "builtin",
    failover: str = "automatic",
    mode: str = "async",
    store_urls: dict[str, str] | None = None,
    site_settings: dict[str, Any] | None = None,
    controller: dict[str, Any] | None = None,
    traffic: dict[str, Any] | None = None,
) -> ClusterFiles:
    """Write the cluster under ``root``; the first site is the primary.

    ``site_settings`` is laid over every site's config, ``controller`` and ``traffic``
    over the topology's sections. ConfigError (nothing written) when anything is wrong.
    """
    try:
        public_url = check_public_url(public_url)
    except ValueError as exc:
        raise ConfigError(f"public URL: {exc}") from None
    listen = listen or default_listen(public_url)
    stores = dict(store_urls or {})
    unknown = sorted(set(stores) - {s.name for s in sites})
    if unknown:
        raise ConfigError(f"--store-url names unknown site(s) {', '.join(unknown)}")
    if any(s.name in (".", "..") for s in sites):
        raise ConfigError("a site cannot be named '.' or '..' (it names the site's folder)")
    data = _topology(
        sites, cluster, controller_url, failover, traffic_backend, listen, controller, traffic
    )
    ttl = Topology.model_validate(data).controller.lease_ttl
    urls = {s.name: s.url.rstrip("/") for s in sites}
    primary = sites[0].name
    configs: dict[str, dict[str, Any]] = {}
    for spec in sites:
        host, port = _host_port(spec)
        overrides: dict[str, Any] = {
            "role": "primary" if spec.name == primary else "standby",
            "http": {"host": host, "port": port, "public_url": public_url},
            "replication": {"mode": mode},
            "cluster": {
                "controller_url": controller_url,
                "lease_ttl": ttl,
                "peer_urls": [u for n, u in urls.items() if n != spec.name],
            },
        }
        if spec.name != primary:
            overrides["replication"]["primary_url"] = urls[primary]
        if spec.name in stores:
            overrides["store"] = {"url": stores[spec.name]}
        overrides = deep_merge(overrides, site_settings or {})
        site_config(spec.name, overrides, f"site {spec.name}")  # check all before writing
        configs[spec.name] = overrides
    taken = [root / TOPOLOGY_FILE, root / SECRETS_FILE, root / "haproxy.cfg", root / HOLD_FILE]
    taken += [root / n / "standby.yaml" for n in urls]
    existing = [str(p) for p in taken if p.exists()]
    if existing:
        raise ConfigError(f"{', '.join(existing)}: already exist(s); choose another --dir")

    paths: dict[str, Path] = {}
    primary_secrets: Path | None = None
    for spec in sites:
        paths[spec.name], secrets_path = write_site(
            root / spec.name, spec.name, configs[spec.name], primary_secrets
        )
        primary_secrets = primary_secrets or secrets_path
    assert primary_secrets is not None
    secrets = yaml.safe_load(primary_secrets.read_text())
    secrets_file = root / SECRETS_FILE
    fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        # Only what the controller and router need: never the KEK or the backup key.
        yaml.safe_dump(
            {k: secrets[k] for k in ("replication_secret", "admin_token")}, fh, sort_keys=False
        )
    topology_file = root / TOPOLOGY_FILE
    for site in data["sites"]:
        site["config"] = f"{site['name']}/standby.yaml"
    topology_file.write_text(yaml.safe_dump(data, sort_keys=False))
    for path in paths.values():
        load_settings(path, env={})  # what was written reads back
    haproxy_config = None
    if traffic_backend == "haproxy":
        topo, _ = load_topology(topology_file)
        haproxy_config = write_config(topo, root / "haproxy.cfg")
    return ClusterFiles(
        root=root,
        topology=topology_file,
        secrets=secrets_file,
        configs=paths,
        urls=urls,
        primary=primary,
        public_url=public_url,
        listen=listen,
        controller_url=controller_url,
        haproxy_config=haproxy_config,
    )


def _topology(
    sites: Sequence[SiteSpec],
    cluster: str,
    controller_url: str,
    failover: str,
    backend: str,
    listen: str,
    controller: dict[str, Any] | None,
    traffic: dict[str, Any] | None,
) -> dict[str, Any]:
    """The topology as it will be written (only what was chosen), checked."""
    data: dict[str, Any] = {
        "cluster": cluster,
        "secrets_file": SECRETS_FILE,
        "controller": deep_merge(
            {
                "url": controller_url,
                "failover": failover,
                "dcs": {"backend": "embedded", "path": "controller.db"},
            },
            controller or {},
        ),
        "traffic": deep_merge({"backend": backend, "listen": listen}, traffic or {}),
        "sites": [
            {"name": s.name, "url": s.url.rstrip("/"), "role": "primary" if i == 0 else "standby"}
            for i, s in enumerate(sites)
        ],
    }
    try:
        Topology.model_validate(data)
    except ValidationError as exc:
        msgs = [f"topology: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(msgs)) from None
    return data
