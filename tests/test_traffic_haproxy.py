"""A real HAProxy driven through its runtime API: weights, drain and maint move traffic."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from standby.cluster.topology import Topology
from standby.cluster.traffic.haproxy import HaproxyBackend, HaproxyError
from standby.cluster.traffic.state import ServerView, SetState, SetWeight
from tests.support.edge import HaproxyProcess
from tests.support.postgres import free_port
from tests.support.traffic import EchoSite, ThreadServer, sites_seen, wait_for

pytestmark = pytest.mark.slow
T = TypeVar("T")


@dataclass
class Haproxy:
    url: str
    backend: HaproxyBackend
    sites: dict[str, EchoSite]

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
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
                "hold_s": 2.0,
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
    # the config starts the standby in maintenance (what the controller wants of it)
    assert haproxy.run(haproxy.backend.servers())["site-b"].admin == "maint"
    haproxy.run(haproxy.backend.set_state("site-b", "ready"))
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
    haproxy.run(haproxy.backend.set_state("site-b", "ready"))
    haproxy.run(haproxy.backend.set_weights({"site-a": 50, "site-b": 50}))
    haproxy.run(haproxy.backend.set_state("site-a", "drain"))
    assert sites_seen(haproxy.url, 10) == {"site-b": 10}
    haproxy.run(haproxy.backend.set_state("site-a", "ready"))
    haproxy.run(haproxy.backend.set_state("site-b", "maint"))
    assert sites_seen(haproxy.url, 10) == {"site-a": 10}
    views = haproxy.run(haproxy.backend.servers())
    assert views["site-b"].admin == "maint" and views["site-a"].admin == "ready"
    rows = {r["srv_name"]: r for r in haproxy.run(haproxy.backend.server_rows())}
    assert int(rows["site-b"]["srv_admin_state"]) & 1  # the forced-maintenance bit


def test_only_maint_moves_a_sticky_client(haproxy: Haproxy) -> None:
    """HAProxy 2.6 keeps sending a client holding the sticky cookie to a server of weight
    0 and to a drained one; in maint it ignores the cookie, picks another server and
    re-pins the client there (what the controller relies on to move sticky clients)."""
    pinned = {"Cookie": "standby_route=site-b"}
    haproxy.run(haproxy.backend.set_state("site-b", "ready"))
    assert haproxy.run(haproxy.backend.weights()) == {"site-a": 100, "site-b": 0}
    assert sites_seen(haproxy.url, 5, headers=pinned) == {"site-b": 5}
    haproxy.run(haproxy.backend.set_state("site-b", "drain"))
    assert haproxy.run(haproxy.backend.servers())["site-b"].admin == "drain"
    assert sites_seen(haproxy.url, 5, headers=pinned) == {"site-b": 5}
    haproxy.run(haproxy.backend.set_state("site-b", "maint"))
    assert sites_seen(haproxy.url, 5, headers=pinned) == {"site-a": 5}
    resp = httpx.get(f"{haproxy.url}/x", headers=pinned)
    assert resp.headers["standby-site"] == "site-a"
    assert resp.cookies.get("standby_route") == "site-a"  # re-pinned
    # back out of maint with weight: usable at once (no health check to wait for)
    haproxy.run(
        haproxy.backend.apply(
            [
                SetState("site-b", "ready"),
                SetWeight("site-b", 100),
                SetWeight("site-a", 0),
                SetState("site-a", "maint"),
            ]
        )
    )
    assert sites_seen(haproxy.url, 5, headers={"Cookie": "standby_route=site-a"}) == {"site-b": 5}
    views = haproxy.run(haproxy.backend.servers())
    assert views["site-a"] == ServerView(0, "maint", "down")  # no checks in maint
    assert views["site-b"] == ServerView(100, "ready", "up")


def test_health_check_ejects_unready_site(haproxy: Haproxy) -> None:
    haproxy.run(haproxy.backend.set_state("site-b", "ready"))
    haproxy.run(haproxy.backend.set_weights({"site-a": 50, "site-b": 50}))
    haproxy.sites["site-a"].ready = False
    wait_for(lambda: haproxy.run(haproxy.backend.servers())["site-a"].op == "down")
    assert sites_seen(haproxy.url, 10) == {"site-b": 10}


def test_a_request_waits_while_no_server_can_take_it(haproxy: Haproxy) -> None:
    """The hold (traffic.hold_s, 2 s here): the primary fails its checks, the standby is
    in maint; a request sent then is answered by the standby once it is made ready, and
    one sent while nothing changes gets HAProxy's 503 when the hold runs out."""
    haproxy.sites["site-a"].ready = False
    wait_for(lambda: haproxy.run(haproxy.backend.servers())["site-a"].op == "down")
    answers: list[httpx.Response] = []
    waiting = threading.Thread(target=lambda: answers.append(httpx.get(f"{haproxy.url}/x")))
    waiting.start()
    time.sleep(0.5)  # the request is held meanwhile
    assert answers == []
    haproxy.run(haproxy.backend.apply([SetState("site-b", "ready"), SetWeight("site-b", 100)]))
    waiting.join(10)
    assert answers[0].status_code == 200 and answers[0].headers["standby-site"] == "site-b"
    haproxy.run(haproxy.backend.set_state("site-b", "maint"))
    assert httpx.get(f"{haproxy.url}/x").status_code == 503  # the hold is bounded


def test_runtime_api_errors_are_clear(haproxy: Haproxy, tmp_path: Path) -> None:
    with pytest.raises(HaproxyError, match="nope"):
        haproxy.run(haproxy.backend.set_weights({"nope": 10}))
    with pytest.raises(HaproxyError, match="find backend"):
        haproxy.run(HaproxyBackend(str(haproxy.backend.socket_path), "other").servers())
    with pytest.raises(HaproxyError, match="between 0 and 256"):
        haproxy.run(haproxy.backend.apply([SetWeight("site-a", 300)]))
    with pytest.raises(HaproxyError, match="admin socket"):
        haproxy.run(HaproxyBackend(str(tmp_path / "missing.sock"), "standby").weights())
