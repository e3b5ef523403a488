"""The path users take, whole: two real sites and the controller behind a traffic layer
(the builtin router or a real HAProxy the controller drives), reached on one public URL."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from standby.cluster.topology import Topology, load_topology
from standby.cluster.traffic.haproxy_config import write_config
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
        write_config(topology, self.config)
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
    """HAProxy accepts connections (a request could be held: no site may be up yet)."""
    parts = httpx.URL(url)
    try:
        with socket.create_connection((parts.host, parts.port or 80), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def edge_cluster(
    root: Path, layer: str, traffic_settings: dict[str, Any] | None = None, **cluster_args: Any
) -> Iterator[tuple[Cluster, str]]:
    """A running two-site cluster behind ``layer`` ("builtin" or "haproxy"); yields the
    cluster and the public URL clients use. HAProxy starts before the controller, which
    drives it over the admin socket. ``traffic_settings`` go into the topology's traffic."""
    if layer == "haproxy":
        with haproxy_cluster(root, traffic_settings, **cluster_args) as (cluster, _):
            yield cluster, cluster.router_url
        return
    traffic: dict[str, Any] = {**(traffic_settings or {}), "backend": layer}
    cluster = make_cluster(root, traffic=traffic, **cluster_args)
    try:
        cluster.start(router=True)
        cluster.wait_writable("site-a")
        _wait_routed(cluster.router_url)
        yield cluster, cluster.router_url
    finally:
        cluster.stop()


@contextmanager
def haproxy_cluster(
    root: Path, traffic_settings: dict[str, Any] | None = None, **cluster_args: Any
) -> Iterator[tuple[Cluster, HaproxyProcess]]:
    """``edge_cluster(root, "haproxy")`` that also yields the HAProxy process (to restart
    it, or to reach its admin socket)."""
    traffic: dict[str, Any] = {
        **(traffic_settings or {}),
        "backend": "haproxy",
        "haproxy": {"socket": str(root / "haproxy.sock")},
    }
    cluster = make_cluster(root, traffic=traffic, **cluster_args)
    topology, _ = load_topology(cluster.topology)
    haproxy = HaproxyProcess(topology, root)
    try:
        haproxy.start()
        cluster.start()
        cluster.wait_writable("site-a")
        _wait_routed(cluster.router_url)
        yield cluster, haproxy
    finally:
        cluster.stop()
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


@dataclass(frozen=True)
class Answer:
    """One request of a ``ClientLoop``: when, what, and what came back."""

    at: float  # wall-clock time it was sent (to set beside the controller's events)
    op: str  # login (a write: a new session) or read (discovery)
    status: int | None  # None: no HTTP answer (connection refused, dropped, timeout)
    site: str | None  # Standby-Site of the answer (the primary's, when forwarded)
    forwarded_by: str | None  # the standby that forwarded it to the primary
    pinned: str | None  # the sticky cookie the client holds after the answer
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 400


class ClientLoop:
    """One client in a thread sending a login and a read in turn through the traffic layer
    until stopped, bounded in count and time. It keeps its cookies as a browser does, so
    the traffic layer's sticky cookie pins it (``pin``: start pinned to that site)."""

    COOKIE = "standby_route"

    def __init__(
        self,
        url: str,
        tenant: str,
        username: str,
        password: str,
        *,
        pin: str | None = None,
        pause: float = 0.02,
        max_requests: int = 3000,
        max_seconds: float = 120.0,
    ) -> None:
        self.client = httpx.Client(base_url=url, timeout=10.0)
        if pin is not None:  # as the traffic layer would have set it for this host
            self.client.cookies.set(self.COOKIE, pin, domain=httpx.URL(url).host)
        self.tenant, self.body = tenant, {"username": username, "password": password}
        self.pause, self.max_requests, self.max_seconds = pause, max_requests, max_seconds
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ClientLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> list[Answer]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(20)
        self.client.close()
        return self.answers

    def one(self, op: str) -> Answer:
        sent = time.time()
        try:
            if op == "login":
                resp = self.client.post(f"/t/{self.tenant}/login", json=self.body)
            else:
                resp = self.client.get(f"/t/{self.tenant}/.well-known/openid-configuration")
        except httpx.HTTPError as exc:
            pinned = self.client.cookies.get(self.COOKIE)
            return Answer(sent, op, None, None, None, pinned, type(exc).__name__)
        error = None if resp.status_code < 400 else f"http_{resp.status_code} {resp.text[:80]}"
        return Answer(
            sent,
            op,
            resp.status_code,
            resp.headers.get("standby-site"),
            resp.headers.get("standby-forwarded-by"),
            self.client.cookies.get(self.COOKIE),
            error,
        )

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        for n in range(self.max_requests):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            self.answers.append(self.one("login" if n % 2 == 0 else "read"))
            self._stop.wait(self.pause)

    def since(self, t: float) -> list[Answer]:
        return [a for a in self.answers if a.at >= t]

    def errors(self, since: float = 0.0) -> list[Answer]:
        return [a for a in self.since(since) if not a.ok]

    def wait_answers(self, n: int, timeout: float = 20.0) -> None:
        """Until ``n`` more answers came (the loop is really running against the layer)."""
        target = len(self.answers) + n
        deadline = time.monotonic() + timeout
        while len(self.answers) < target:
            assert time.monotonic() < deadline, f"the client loop got no answers in {timeout}s"
            time.sleep(0.02)
