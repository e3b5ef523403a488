"""A whole cluster for tests and benchmarks: a primary and a standby (`standby serve`),
a controller (`standby controller`) and optionally the builtin router, on loopback ports.

``ctl_to_primary`` / ``primary_to_ctl`` let a test put a proxy on either path
between the primary and the controller (the partition test)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from standby.drills.processes import Managed, standby_argv
from tests.support.postgres import free_port
from tests.support.sites import ManagedProcess, SiteProcess, make_site_dir


class Proc(ManagedProcess):
    """A `standby <command>` subprocess with a readiness probe."""

    def __init__(self, args: list[str], log_path: Path, ready_url: str, token: str) -> None:
        self.managed = Managed(
            args[0],
            standby_argv(*args),
            log_path,
            ready_url,
            health_headers={"Authorization": f"Bearer {token}"},
            health_status=200,
        )


@dataclass
class Cluster:
    root: Path
    topology: Path
    configs: dict[str, Path]
    urls: dict[str, str]
    controller_url: str
    router_url: str
    admin_token: str
    replication_secret: str
    sites: dict[str, SiteProcess] = field(default_factory=dict)
    controller: Proc | None = None
    router: Proc | None = None

    # ------------------------------------------------------------ processes
    def start_site(self, name: str) -> SiteProcess:
        proc = SiteProcess(self.configs[name]).start()
        self.sites[name] = proc
        return proc

    def start_controller(self) -> Proc:
        self.controller = Proc(
            ["controller", "--topology", str(self.topology)],
            self.root / "controller.log",
            f"{self.controller_url}/status",
            self.admin_token,
        ).start()
        return self.controller

    def start_router(self) -> Proc:
        self.router = Proc(
            ["router", "--topology", str(self.topology)],
            self.root / "router.log",
            f"{self.router_url}/_router/status",
            self.admin_token,
        ).start()
        return self.router

    def start(self, router: bool = False) -> Cluster:
        # The controller first: the primary's first lease renewal happens before it serves.
        self.start_controller()
        if router:
            self.start_router()
        self.start_site("site-a")
        self.start_site("site-b")
        return self

    def stop(self) -> None:
        for proc in (self.controller, self.router, *self.sites.values()):
            if proc is not None:
                proc.stop()  # continues a SIGSTOPped process before SIGTERM

    # ------------------------------------------------------------ calls
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def status(self) -> dict[str, Any]:
        resp = httpx.get(f"{self.controller_url}/status", headers=self.admin(), timeout=5)
        resp.raise_for_status()
        return resp.json()  # type: ignore[no-any-return]

    def events(self) -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.controller_url}/events", headers=self.admin(), timeout=5)
        resp.raise_for_status()
        return resp.json()["events"]  # type: ignore[no-any-return]

    def site_status(self, name: str, timeout: float = 2.0) -> dict[str, Any] | None:
        try:
            resp = httpx.get(
                f"{self.urls[name]}/replication/status",
                headers={"Authorization": f"Bearer {self.replication_secret}"},
                timeout=timeout,
            )
        except httpx.HTTPError:
            return None
        return resp.json() if resp.status_code == 200 else None  # type: ignore[no-any-return]

    def write(self, name: str, key: str, timeout: float = 2.0) -> httpx.Response:
        """One identity write (a tenant) straight at a site."""
        return httpx.post(
            f"{self.urls[name]}/admin/tenants",
            json={"id": key, "name": key},
            headers=self.admin(),
            timeout=timeout,
        )

    def wait_for(self, what: str, check: Any, timeout: float = 20.0, every: float = 0.05) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            time.sleep(every)
        try:
            seen: Any = self.status()
        except httpx.HTTPError as exc:
            seen = f"controller unreachable: {exc}"
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; controller: {seen}")

    def wait_writable(self, name: str, timeout: float = 20.0) -> None:
        counter = iter(range(1_000_000))

        def ok() -> bool:
            try:
                return self.write(name, f"probe-{name}-{next(counter)}").status_code == 201
            except httpx.HTTPError:
                return False

        self.wait_for(f"{name} to accept writes", ok, timeout)

    def wait_role(self, name: str, role: str, epoch: int, timeout: float = 20.0) -> None:
        def ok() -> bool:
            s = self.site_status(name)
            return bool(s and s["role"] == role and s["epoch"] == epoch and not s.get("fenced"))

        self.wait_for(f"{name} to be {role} on epoch {epoch}", ok, timeout)


def make_cluster(
    root: Path,
    *,
    store_urls: dict[str, str] | None = None,
    mode: str = "automatic",
    controller: dict[str, Any] | None = None,
    ctl_to_primary: str | None = None,
    primary_to_ctl: str | None = None,
    lease_ttl: float = 2.0,
    ports: dict[str, int] | None = None,
    traffic: dict[str, Any] | None = None,
    site_extra: dict[str, Any] | None = None,
) -> Cluster:
    """Write configs for site-a (primary), site-b (standby), topology and secrets.

    Both sites' public URL (their issuer base) is the router's listen URL unless
    ``site_extra`` says otherwise: relying parties see one issuer whichever site serves.
    ``lease_ttl`` defaults to 2 s here (1 s in production defaults) so a machine
    loaded by a parallel test run does not lapse a lease during start-up work; the
    tests about default timing pass 1.0."""
    ports = ports or {}
    pa, pb = ports.get("site-a") or free_port(), ports.get("site-b") or free_port()
    pc, pr = ports.get("controller") or free_port(), ports.get("router") or free_port()
    urls = {"site-a": f"http://127.0.0.1:{pa}", "site-b": f"http://127.0.0.1:{pb}"}
    ctl_url = f"http://127.0.0.1:{pc}"
    stores = store_urls or {}
    cluster_a = {
        "controller_url": primary_to_ctl or ctl_url,
        "peer_urls": [urls["site-b"]],
        "lease_ttl": lease_ttl,
    }
    extra = dict(site_extra or {})  # settings both sites share (e.g. replication mode)
    extra["http"] = {"public_url": f"http://127.0.0.1:{pr}", **extra.get("http", {})}
    cfg_a = make_site_dir(
        root,
        "site-a",
        port=pa,
        store_url=stores.get("site-a"),
        extra={**extra, "cluster": cluster_a},
    )
    cfg_b = make_site_dir(
        root,
        "site-b",
        port=pb,
        store_url=stores.get("site-b"),
        role="standby",
        secrets_from=cfg_a.parent / "secrets.yaml",
        extra={
            **extra,
            "replication": {**extra.get("replication", {}), "primary_url": urls["site-a"]},
            "cluster": {
                "controller_url": ctl_url,
                "peer_urls": [urls["site-a"]],
                "lease_ttl": lease_ttl,
            },
        },
    )
    secrets = yaml.safe_load((cfg_a.parent / "secrets.yaml").read_text())
    cluster_secrets = root / "cluster-secrets.yaml"
    fd = os.open(cluster_secrets, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(
            {
                "replication_secret": secrets["replication_secret"],
                "admin_token": secrets["admin_token"],
            },
            fh,
        )
    topology = root / "topology.yaml"
    ctl: dict[str, Any] = {
        "url": ctl_url,
        "failover": mode,
        "lease_ttl": lease_ttl,
        "dcs": {"backend": "embedded", "path": "controller.db"},
        **(controller or {}),
    }
    topology.write_text(
        yaml.safe_dump(
            {
                "cluster": "test",
                "secrets_file": "cluster-secrets.yaml",
                "controller": ctl,
                "traffic": {
                    "backend": "builtin",
                    "listen": f"http://127.0.0.1:{pr}",
                    "health_interval": 0.1,
                    **(traffic or {}),
                },
                "sites": [
                    {"name": "site-a", "url": ctl_to_primary or urls["site-a"], "role": "primary"},
                    {"name": "site-b", "url": urls["site-b"], "role": "standby"},
                ],
            },
            sort_keys=False,
        )
    )
    return Cluster(
        root=root,
        topology=topology,
        configs={"site-a": cfg_a, "site-b": cfg_b},
        urls=urls,
        controller_url=ctl_url,
        router_url=f"http://127.0.0.1:{pr}",
        admin_token=secrets["admin_token"],
        replication_secret=secrets["replication_secret"],
    )
