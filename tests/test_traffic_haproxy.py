"""A real HAProxy driven through its runtime API: weights, drain and maint move traffic."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from standby.cluster.topology import Topology
from standby.cluster.traffic.haproxy import HaproxyBackend, HaproxyError
from tests.support.edge import HaproxyProcess
from tests.support.postgres import free_port
from tests.support.traffic import EchoSite, ThreadServer, sites_seen, wait_for

pytestmark = pytest.mark.slow


@dataclass
class Haproxy:
    url: str
    backend: HaproxyBackend
    sites: dict[str, EchoSite]

    def run(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run(coro)


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[Haproxy]:
    echoes = {"site-a": EchoSite("site-a"), "site-b": EchoSite("site-b", epoch=2)}
    servers = {name: ThreadServer(app).start() for name, app in echoes.items()}
    port = free_port()
    topo = Topology.model_validate(
        {
            "secrets_file": "unused.yaml",
            "traffic": {
                "backend": "haproxy",
                "listen": f"http://127.0.0.1:{port}",
                "health_interval": 0.1,
                "haproxy": {"socket": str(tmp_path / "haproxy.sock")},
            },
            "sites": [
                {"name": "site-a", "url": servers["site-a"].url, "role": "primary"},
                {"name": "site-b", "url": servers["site-b"].url, "role": "standby"},
            ],
        }
    )
    proc = HaproxyProcess(topo, tmp_path)
    try:
        proc.start()
        yield Haproxy(proc.url, HaproxyBackend(str(proc.socket), "standby"), echoes)
    finally:
        proc.stop()
        for s in servers.values():
            s.stop()


def test_weights_via_runtime_api_move_traffic(haproxy: Haproxy) -> None:
    assert haproxy.run(haproxy.backend.weights()) == {"site-a": 100, "site-b": 0}
    assert sites_seen(haproxy.url, 10) == {"site-a": 10}
    haproxy.run(haproxy.backend.set_weights({"site-a": 0, "site-b": 100}))
    assert haproxy.run(haproxy.backend.weights()) == {"site-a": 0, "site-b": 100}
    resp = httpx.get(f"{haproxy.url}/x")
    assert resp.headers["standby-site"] == "site-b" and resp.headers["standby-epoch"] == "2"
    assert sites_seen(haproxy.url, 10) == {"site-b": 10}
    haproxy.run(haproxy.backend.set_weights({"site-a": 50, "site-b": 50}))
    seen = sites_seen(haproxy.url, 20)
    assert seen.get("site-a", 0) > 0 and seen.get("site-b", 0) > 0, seen


def test_drain_and_maint_states(haproxy: Haproxy) -> None:
    haproxy.run(haproxy.backend.set_weights({"site-a": 50, "site-b": 50}))
    haproxy.run(haproxy.backend.set_state("site-a", "drain"))
    assert sites_seen(haproxy.url, 10) == {"site-b": 10}
    haproxy.run(haproxy.backend.set_state("site-a", "ready"))
    haproxy.run(haproxy.backend.set_state("site-b", "maint"))
    assert sites_seen(haproxy.url, 10) == {"site-a": 10}
    rows = {r["srv_name"]: r for r in haproxy.run(haproxy.backend.servers())}
    assert rows["site-b"]["srv_admin_state"] != "0"  # maintenance flag set


def test_health_check_ejects_unready_site(haproxy: Haproxy) -> None:
    haproxy.run(haproxy.backend.set_weights({"site-a": 50, "site-b": 50}))
    haproxy.sites["site-a"].ready = False
    wait_for(
        lambda: (
            {r["srv_name"]: r["srv_op_state"] for r in haproxy.run(haproxy.backend.servers())}[
                "site-a"
            ]
            == "0"
        )
    )
    assert sites_seen(haproxy.url, 10) == {"site-b": 10}


def test_runtime_api_errors_are_clear(haproxy: Haproxy, tmp_path: Path) -> None:
    with pytest.raises(HaproxyError, match="nope"):
        haproxy.run(haproxy.backend.set_weights({"nope": 10}))
    with pytest.raises(HaproxyError, match="admin socket"):
        haproxy.run(HaproxyBackend(str(tmp_path / "missing.sock"), "standby").weights())
