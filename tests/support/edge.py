"""The path users take, whole: two real sites and the controller behind a traffic layer
(the builtin router or a real HAProxy the controller drives), reached on one public URL."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from standby.cluster.topology import Topology, load_topology
from standby.cluster.traffic.haproxy import render_config
from tests.support.cluster import Cluster, make_cluster

TRAFFIC_LAYERS = ["builtin", "haproxy"]


class HaproxyProcess:
    """A real HAProxy started from the config Standby writes for a topology."""

    def __init__(self, topology: Topology, folder: Path) -> None:
        binary = shutil.which("haproxy")
        if binary is None:
            pytest.fail("haproxy is not installed (scripts/test.sh installs it: apt-get haproxy)")
        self.binary = binary
        self.socket = Path(topology.traffic.haproxy.socket)
        self.url = topology.traffic.listen.rstrip("/")
        self.config = folder / "haproxy.cfg"
        self.log_path = folder / "haproxy.log"
        self.config.write_text(render_config(topology))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> HaproxyProcess:
        check = subprocess.run(
            [self.binary, "-c", "-f", str(self.config)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-db", "-f", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not self.socket.exists() or not _listening(self.url):
            if self.proc.poll() is not None:
                raise AssertionError(f"haproxy exited: {self.log_path.read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"haproxy did not start: {self.log_path.read_text()}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _listening(url: str) -> bool:
    try:
        httpx.get(f"{url}/", timeout=0.5)
        return True
    except httpx.HTTPError:
        return False


@contextmanager
def edge_cluster(
    root: Path, layer: str, traffic_settings: dict[str, Any] | None = None, **cluster_args: Any
) -> Iterator[tuple[Cluster, str]]:
    """A running two-site cluster behind ``layer`` ("builtin" or "haproxy"); yields the
    cluster and the public URL clients use. HAProxy starts before the controller, which
    drives it over the admin socket. ``traffic_settings`` go into the topology's traffic."""
    traffic: dict[str, Any] = {**(traffic_settings or {}), "backend": layer}
    if layer == "haproxy":
        traffic["haproxy"] = {"socket": str(root / "haproxy.sock")}
    cluster = make_cluster(root, traffic=traffic, **cluster_args)
    haproxy: HaproxyProcess | None = None
    try:
        if layer == "haproxy":
            topology, _ = load_topology(cluster.topology)
            haproxy = HaproxyProcess(topology, root).start()
        cluster.start(router=layer == "builtin")
        cluster.wait_writable("site-a")
        _wait_routed(cluster.router_url)
        yield cluster, cluster.router_url
    finally:
        cluster.stop()
        if haproxy is not None:
            haproxy.stop()


def _wait_routed(url: str, timeout: float = 20.0) -> None:
    """Until the traffic layer sends requests to a ready primary."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            resp = httpx.get(f"{url}/readyz", timeout=1.0)
            if resp.status_code == 200 and resp.headers.get("standby-site") == "site-a":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the traffic layer at {url} never reached site-a")
