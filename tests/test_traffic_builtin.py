"""Builtin router mechanics against small real upstream servers (uvicorn on loopback)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from standby.cluster.traffic.base import TrafficBackend
from standby.cluster.traffic.builtin import Router, make_server
from standby.cluster.traffic.builtin_client import BuiltinRouterClient, RouterError
from tests.support.postgres import free_port
from tests.support.traffic import EchoSite, ThreadServer, sites_seen, wait_for

TOKEN = "router-admin-token-for-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Rig:
    url: str
    router: Router
    sites: dict[str, EchoSite]
    servers: dict[str, ThreadServer]

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}


def _start(
    sites: dict[str, str], weights: dict[str, int], hold_s: float = 1.0
) -> tuple[Router, ThreadServer]:
    router = Router(sites, weights, TOKEN, health_interval=0.05, hold_s=hold_s)
    port = free_port()
    server = ThreadServer(router, port, make_server(router, "127.0.0.1", port))
    return router, server.start()


@pytest.fixture
def rig() -> Iterator[Rig]:
    echoes = {"a": EchoSite("a"), "b": EchoSite("b", epoch=2)}
    servers = {name: ThreadServer(app).start() for name, app in echoes.items()}
    router, front = _start({n: s.url for n, s in servers.items()}, {"a": 100, "b": 0})
    try:
        yield Rig(front.url, router, echoes, servers)
    finally:
        front.stop()
        for s in servers.values():
            s.stop()


def test_weights_move_traffic_and_site_headers_pass_through(rig: Rig) -> None:
    assert sites_seen(rig.url, 20) == {"a": 20}
    resp = httpx.put(f"{rig.url}/_router/weights", json={"a": 0, "b": 100}, headers=rig.admin())
    assert resp.status_code == 200 and resp.json() == {"a": 0, "b": 100}
    resp = httpx.get(f"{rig.url}/x")
    assert resp.headers["standby-site"] == "b" and resp.headers["standby-epoch"] == "2"


def test_weighted_split_sends_traffic_to_both(rig: Rig) -> None:
    httpx.put(f"{rig.url}/_router/weights", json={"a": 50, "b": 50}, headers=rig.admin())
    counts = sites_seen(rig.url, 200)
    # 200 draws at p=0.5: below 40 on either side has probability < 1e-18
    assert counts.get("a", 0) >= 40 and counts.get("b", 0) >= 40, counts


def test_admin_api_requires_token_and_validates(rig: Rig) -> None:
    assert httpx.get(f"{rig.url}/_router/weights").status_code == 401
    assert (
        httpx.get(f"{rig.url}/_router/weights", headers={"Authorization": "Bearer"}).status_code
        == 401
    )
    bad = {"Authorization": "Bearer wrong"}
    assert httpx.put(f"{rig.url}/_router/weights", json={"a": 1}, headers=bad).status_code == 401
    for body in ({"zz": 10}, {"a": 101}, {"a": "x"}, [1]):
        resp = httpx.put(f"{rig.url}/_router/weights", json=body, headers=rig.admin())
        assert resp.status_code == 400, body
        assert resp.json()["error"] == "invalid_weights"
    assert rig.router.weights == {"a": 100, "b": 0}
    status = httpx.get(f"{rig.url}/_router/status", headers=rig.admin()).json()
    assert set(status["sites"]) == {"a", "b"} and status["sites"]["a"]["weight"] == 100


def test_builtin_client_is_a_traffic_backend(rig: Rig) -> None:
    client = BuiltinRouterClient(rig.url, TOKEN)
    assert isinstance(client, TrafficBackend)
    asyncio.run(client.set_weights({"a": 25, "b": 75}))
    assert asyncio.run(client.weights()) == {"a": 25, "b": 75}
    with pytest.raises(RouterError):
        asyncio.run(BuiltinRouterClient(rig.url, "wrong").weights())


def test_sticky_cookie_pins_and_fails_over_when_pinned_site_drains(rig: Rig) -> None:
    httpx.put(f"{rig.url}/_router/weights", json={"a": 50, "b": 50}, headers=rig.admin())
    with httpx.Client() as client:
        first = client.get(f"{rig.url}/s")
        pinned = first.headers["standby-site"]
        assert client.cookies.get("standby_route") == pinned
        assert {client.get(f"{rig.url}/s").headers["standby-site"] for _ in range(20)} == {pinned}
        other = "b" if pinned == "a" else "a"
        httpx.put(f"{rig.url}/_router/weights", json={pinned: 0, other: 100}, headers=rig.admin())
        moved = client.get(f"{rig.url}/s")
        assert moved.headers["standby-site"] == other
        assert client.cookies.get("standby_route") == other


def test_hop_by_hop_headers_removed_and_forwarded_headers_added(rig: Rig) -> None:
    resp = httpx.get(
        f"{rig.url}/echo?q=1",
        headers={
            "Connection": "x-drop-me",
            "X-Drop-Me": "1",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "TE": "trailers",
            "X-Forwarded-For": "203.0.113.7",
            "X-Keep": "yes",
        },
    )
    echoed = {k: v for k, v in resp.json()["headers"]}
    assert resp.json()["query"] == "q=1"
    for gone in ("x-drop-me", "proxy-authorization", "te"):
        assert gone not in echoed, gone
    assert echoed["x-keep"] == "yes"
    assert echoed["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert echoed["x-forwarded-proto"] == "http"
    assert echoed["x-forwarded-host"].startswith("127.0.0.1:")
    for gone in ("x-hop-secret", "keep-alive", "proxy-agent"):
        assert gone not in resp.headers, gone
    assert resp.headers["x-end-to-end"] == "kept"
    assert len(resp.headers.get_list("date")) == len(resp.headers.get_list("server")) == 1


def test_streams_large_bodies_both_ways(rig: Rig) -> None:
    size = 24 * 1024 * 1024
    with httpx.stream("GET", f"{rig.url}/big/{size}", timeout=30) as resp:
        got = sum(len(c) for c in resp.iter_raw())
    assert resp.status_code == 200 and got == size

    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b"y" * 65536

    resp = httpx.post(f"{rig.url}/upload", content=chunks(), timeout=30)
    assert resp.json()["received"] == 64 * 65536


def test_connect_failure_is_retried_on_another_site(rig: Rig) -> None:
    httpx.put(f"{rig.url}/_router/weights", json={"a": 50, "b": 50}, headers=rig.admin())
    rig.servers["a"].stop()  # refused at once; the router has not noticed yet
    seen = sites_seen(rig.url, 20)
    assert seen == {"b": 20}
    assert rig.router.retries >= 1 or not rig.router.sites["a"].healthy


def test_health_checks_eject_and_readmit(rig: Rig) -> None:
    httpx.put(f"{rig.url}/_router/weights", json={"a": 50, "b": 50}, headers=rig.admin())
    rig.sites["a"].ready = False
    wait_for(lambda: not rig.router.sites["a"].healthy)
    assert sites_seen(rig.url, 20) == {"b": 20}
    status = httpx.get(f"{rig.url}/_router/status", headers=rig.admin()).json()
    assert status["sites"]["a"]["healthy"] is False and "503" in status["sites"]["a"]["last_error"]
    rig.sites["a"].ready = True
    wait_for(lambda: rig.router.sites["a"].healthy)
    assert "a" in sites_seen(rig.url, 40)


def test_no_eligible_site_is_a_clear_503_after_the_hold(rig: Rig) -> None:
    httpx.put(f"{rig.url}/_router/weights", json={"a": 0, "b": 0}, headers=rig.admin())
    hits = rig.sites["a"].hits + rig.sites["b"].hits
    resp = httpx.post(f"{rig.url}/t/x/login", content=json.dumps({"u": 1}))
    assert resp.status_code == 503 and resp.json()["error"] == "no_healthy_site"
    assert resp.headers["retry-after"] == "1"
    assert "within 1.0 s" in resp.json()["message"]
    # sites drained on purpose get nothing, not even while the request waited
    assert rig.sites["a"].hits + rig.sites["b"].hits == hits
    assert rig.router.held >= 1


def test_write_refused_by_a_standby_is_sent_to_the_other_site(rig: Rig) -> None:
    httpx.put(f"{rig.url}/_router/weights", json={"a": 50, "b": 50}, headers=rig.admin())
    rig.sites["b"].refuse_writes = True
    with httpx.Client() as client:
        for i in range(20):
            client.cookies.clear()
            resp = client.post(f"{rig.url}/w", json={"i": i})
            assert resp.status_code == 200 and resp.headers["standby-site"] == "a"
            assert resp.json()["received"] > 0  # the buffered body was sent again in full
    assert rig.router.retries > 0
    httpx.put(f"{rig.url}/_router/weights", json={"a": 0, "b": 100}, headers=rig.admin())
    resp = httpx.post(f"{rig.url}/w", json={})
    # held for traffic.hold_s, then the standby's own refusal reaches the client
    assert resp.status_code == 503 and resp.json()["error"] == "not_writable"
    assert resp.headers["standby-site"] == "b"


def test_a_write_is_held_through_a_failover_and_answered_by_the_new_primary() -> None:
    """The primary is down and the standby refuses writes: the request waits (no error)
    until the controller moves traffic to a site that takes it."""
    echoes = {"a": EchoSite("a"), "b": EchoSite("b", epoch=2)}
    servers = {name: ThreadServer(app).start() for name, app in echoes.items()}
    router, front = _start({n: s.url for n, s in servers.items()}, {"a": 100, "b": 0}, hold_s=10)
    try:
        echoes["b"].refuse_writes = True
        servers["a"].stop()  # kill: connections refused
        results: list[httpx.Response] = []

        def post() -> None:
            results.append(httpx.post(f"{front.url}/w", json={"x": 1}, timeout=15))

        clients = [threading.Thread(target=post) for _ in range(5)]
        for t in clients:
            t.start()
        wait_for(lambda: router.held >= 5)
        # the standby answers reads meanwhile, although it has no weight
        read = httpx.get(f"{front.url}/discovery", timeout=5)
        assert read.status_code == 200 and read.headers["standby-site"] == "b"
        assert all(t.is_alive() for t in clients)  # nobody got an error
        echoes["b"].refuse_writes = False  # promoted
        httpx.put(f"{front.url}/_router/weights", json={"a": 0, "b": 100}, headers=ADMIN)
        for t in clients:
            t.join(15)
        assert [r.status_code for r in results] == [200] * 5, [r.text for r in results]
        assert {r.headers["standby-site"] for r in results} == {"b"}
        assert all(r.json()["received"] > 0 for r in results)  # the body, sent again whole
    finally:
        front.stop()
        for s in servers.values():
            s.stop()


def test_resend_rules() -> None:
    """Only a request that provably never reached a site, or an idempotent one, is sent
    again after a transport error."""
    from standby.cluster.traffic.builtin import may_resend

    request = httpx.Request("POST", "http://127.0.0.1:1/")
    refused = httpx.ConnectError("refused", request=request)
    dropped = httpx.RemoteProtocolError("Server disconnected", request=request)
    read_error = httpx.ReadError("reset", request=request)
    timeout = httpx.ReadTimeout("slow", request=request)
    assert may_resend(refused, "POST") and may_resend(refused, "GET")
    assert may_resend(dropped, "GET") and may_resend(read_error, "HEAD")
    assert not may_resend(dropped, "POST") and not may_resend(read_error, "POST")
    assert not may_resend(timeout, "GET") and not may_resend(timeout, "POST")


def test_fallback_decision() -> None:
    from standby.cluster.traffic import weights as w

    # the weighted primary is down: a healthy standby takes what it can
    assert w.fallback({"a": 100, "b": 0}, {"b"}, ()) == "b"
    assert w.fallback({"a": 100, "b": 0}, {"b"}, {"b"}) is None
    # the primary is up: no fallback; nothing has weight (drained on purpose): none either
    assert w.fallback({"a": 100, "b": 0}, {"a", "b"}, ()) is None
    assert w.fallback({"a": 0, "b": 0}, {"a", "b"}, ()) is None


def _raw_get(url: str, path: str, headers: list[str]) -> dict[str, object]:
    """GET through a plain socket, so no client library adds a field of its own."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}", *headers, "Connection: close"]
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    if b"transfer-encoding: chunked" in head.lower():
        size, _, rest = body.partition(b"\r\n")
        body = rest[: int(size, 16)]
    return dict(json.loads(body))


def test_router_forwards_request_headers_as_they_came(rig: Rig) -> None:
    """Nothing is added to a request but the X-Forwarded-* fields: no cookie remembered
    from an earlier response, no Accept-Encoding or User-Agent of the router's own."""
    # another client's request whose response set a cookie would be stored by a jar
    httpx.get(f"{rig.url}/x", headers={"cookie": "standby_session=someone-else"})
    seen = _raw_get(rig.url, "/echo", ["X-Mine: 1"])
    names = [str(k).lower() for k, _ in seen["headers"]]  # type: ignore[attr-defined]
    assert "cookie" not in names
    assert "accept-encoding" not in names and "user-agent" not in names and "accept" not in names
    assert names.count("x-mine") == 1
    seen = _raw_get(rig.url, "/echo", ["Cookie: a=1; b=2", "User-Agent: me"])
    got = {str(k).lower(): v for k, v in seen["headers"]}  # type: ignore[attr-defined]
    assert got["cookie"] == "a=1; b=2" and got["user-agent"] == "me"
