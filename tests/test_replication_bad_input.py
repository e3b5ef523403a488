"""Bad input to replication: wrong secret, stale epochs, garbage in the stream, a standby
pointed at another standby — clear errors, and no data touched."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from standby.store import Store
from standby.store.records import GENESIS_HASH, Record, chain_hash
from tests.support.postgres import free_port
from tests.support.replication import (
    WorkloadSite,
    caught_up,
    rep_headers,
    secret_of,
    snapshot,
    status,
    tenant_op,
    user_op,
    wait_for,
    write,
    write_pair,
)
from tests.support.sites import SiteProcess, load_site, make_site_dir

pytestmark = pytest.mark.slow

ENDPOINTS = [
    ("GET", "/replication/stream?after=0&epoch=1", None),
    ("GET", "/replication/status", None),
    ("GET", "/replication/timeline", None),
    ("POST", "/replication/ack", {"site": "x", "lsn": 1, "epoch": 1}),
    ("POST", "/replication/promote", {"epoch": 9}),
    ("POST", "/replication/demote", {"epoch": 9}),
    ("POST", "/replication/follow", {"primary_url": "http://127.0.0.1:1", "epoch": 9}),
    ("POST", "/replication/reapply", {"records": [{}]}),
]


def test_wrong_secret_and_stale_epochs_are_refused_and_a_newer_epoch_fences(
    tmp_path: Path, store_url_pair: list[str]
) -> None:
    pc, _ = write_pair(tmp_path, store_url_pair)
    secret = secret_of(pc)
    a = WorkloadSite(pc).start()
    try:
        assert write(a.url, [tenant_op("t1")]).status_code == 200
        for method, path, body in ENDPOINTS:
            for auth in ({}, rep_headers("wrong-" + secret), {"Authorization": secret}):
                resp = httpx.request(method, a.url + path, json=body, headers=auth, timeout=5)
                assert resp.status_code == 401, (path, resp.text)
                assert resp.json()["error"] == "unauthorized"
        ok = rep_headers(secret)
        old = httpx.get(f"{a.url}/replication/stream?after=0&epoch=0", headers=ok)
        assert old.status_code == 409 and old.json()["error"] == "stale_epoch"
        assert old.json()["timeline"][0]["epoch"] == 1
        for path in ("/replication/promote", "/replication/demote"):
            resp = httpx.post(a.url + path, json={"epoch": 0}, headers=ok)
            assert resp.status_code == 400  # epochs start at 1
        stale = httpx.post(f"{a.url}/replication/promote", json={"epoch": 1}, headers=ok)
        assert stale.status_code == 200 and stale.json()["changed"] is False  # idempotent
        junk = httpx.post(f"{a.url}/replication/ack", json={"lsn": "x"}, headers=ok)
        assert junk.status_code == 400
        assert write(a.url, [user_op("before")]).status_code == 200
        # an ack from a standby on a newer epoch: this primary is stale and fences itself
        newer = httpx.post(
            f"{a.url}/replication/ack", json={"site": "b", "lsn": 1, "epoch": 3}, headers=ok
        )
        assert newer.status_code == 409 and newer.json()["epoch"] == 1
        refused = write(a.url, [user_op("after")])
        assert refused.status_code == 503 and "fenced" in refused.json()["message"]
        assert status(a.url, secret)["fenced"]
        users = {r[0] for r in snapshot(store_url_pair[0], "site-a")["users"]}
        assert users == {"before"}
        # the fence survives a restart
        a.stop()
        a.start()
        assert write(a.url, [user_op("after")]).status_code == 503
        metrics = httpx.get(f"{a.url}/metrics").text
        assert "standby_replication_fenced 1.0" in metrics
    finally:
        a.stop()


def test_an_epoch_header_from_the_future_fences_the_primary(
    tmp_path: Path, store_url_pair: list[str]
) -> None:
    pc, _ = write_pair(tmp_path, store_url_pair)
    secret = secret_of(pc)
    a = WorkloadSite(pc).start()
    try:
        assert write(a.url, [tenant_op("t1")]).status_code == 200
        httpx.get(f"{a.url}/replication/timeline", headers=rep_headers(secret, epoch=2))
        assert write(a.url, [user_op("u")]).status_code == 503
    finally:
        a.stop()


def _garbage_primary(lines: list[bytes], port: int) -> tuple[uvicorn.Server, threading.Thread]:
    """A 'primary' that streams the given lines (test double of the other side)."""
    app = FastAPI()

    @app.get("/replication/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(iter(lines), media_type="application/x-ndjson")

    @app.get("/replication/timeline")
    def timeline() -> dict[str, object]:
        return {"timeline": [{"epoch": 1, "start_lsn": 1, "site": "fake", "created_at": 1}]}

    @app.post("/replication/ack")
    def ack() -> dict[str, int]:
        return {"epoch": 1}

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started)
    return server, thread


def _records(n: int) -> list[Record]:
    out, prev = [], GENESIS_HASH
    for lsn in range(1, n + 1):
        row = json.dumps({"id": f"t{lsn}", "tenant": f"t{lsn}", "name": "x", "created_at": 1})
        args = (lsn, 1, "fake", lsn, lsn, f"t{lsn}", "tenants", f"t{lsn}", "insert", row)
        h = chain_hash(prev, *args)
        out.append(Record(*args, prev_hash=prev, hash=h))
        prev = h
    return out


def _beat(lsn: int) -> bytes:
    body = {"heartbeat": True, "head_lsn": lsn, "head_committed_at": lsn, "epoch": 1}
    return (json.dumps({**body, "at": 1, "through_lsn": lsn, "pending_bytes": 0}) + "\n").encode()


@pytest.mark.parametrize("garbage", ["not json at all", "tampered", '{"lsn": 3}'])
def test_garbage_in_the_stream_applies_nothing(
    tmp_path: Path, store_url_pair: list[str], garbage: str
) -> None:
    recs = _records(3)
    lines = [(r.to_json() + "\n").encode() for r in recs[:2]]
    if garbage == "tampered":
        bad = json.loads(recs[2].to_json())
        bad["payload"] = bad["payload"].replace('"x"', '"evil"')
        lines.append((json.dumps(bad) + "\n").encode())
    else:
        lines.append((garbage + "\n").encode())
    lines.append(_beat(3))
    port = free_port()
    server, thread = _garbage_primary(lines, port)
    primary_cfg = make_site_dir(tmp_path, "ref", store_url=store_url_pair[0])
    sc = make_site_dir(
        tmp_path,
        "site-b",
        store_url=store_url_pair[1],
        role="standby",
        secrets_from=primary_cfg.parent / "secrets.yaml",
        extra={"replication": {"primary_url": f"http://127.0.0.1:{port}"}},
    )
    b = SiteProcess(sc).start()
    try:
        secret = secret_of(sc)
        err = wait_for(lambda: status(b.url, secret)["last_error"])
        assert "StreamError" in err
        assert status(b.url, secret)["applied_lsn"] == 0
        metrics = httpx.get(f"{b.url}/metrics").text
        assert "standby_replication_rejected_batches 0.0" not in metrics
    finally:
        b.stop()
        server.should_exit = True
        thread.join(10)
    settings, _ = load_site(sc)
    store = Store(settings.store.url, "site-b")
    try:
        assert store.head().lsn == 0
    finally:
        store.close()
    assert snapshot(store_url_pair[1], "site-b")["tenants"] == []


@pytest.fixture
def chain(
    tmp_path: Path, store_url_pair: list[str]
) -> Iterator[tuple[WorkloadSite, SiteProcess, str]]:
    pc, sc = write_pair(tmp_path, store_url_pair)
    a, b = WorkloadSite(pc).start(), SiteProcess(sc)
    try:
        b.start()
        yield a, b, secret_of(pc)
    finally:
        b.stop()
        a.stop()


def test_a_standby_pointed_at_a_standby_gets_a_clear_error_and_touches_nothing(
    tmp_path: Path, chain: tuple[WorkloadSite, SiteProcess, str]
) -> None:
    a, b, secret = chain
    last = write(a.url, [tenant_op("t1"), user_op("u1")]).json()["lsn"]
    wait_for(lambda: caught_up(b.url, secret, last))
    # site-c follows site-b, which is itself a standby
    c_cfg = make_site_dir(
        tmp_path,
        "site-c",
        role="standby",
        secrets_from=a.config.parent / "secrets.yaml",
        extra={"replication": {"primary_url": b.url}},
    )
    c = SiteProcess(c_cfg).start()
    try:
        err = wait_for(lambda: status(c.url, secret)["last_error"])
        assert "not_primary" in err and "site-b" in err and a.url in err
        assert status(c.url, secret)["head_lsn"] == 0
        # ordering the old primary to follow a standby is refused and changes nothing
        head_a = status(a.url, secret)["head_lsn"]
        resp = httpx.post(
            f"{a.url}/replication/follow",
            json={"primary_url": c.url, "epoch": 1},
            headers=rep_headers(secret),
        )
        assert resp.status_code == 409 and resp.json()["error"] == "not_primary"
        after = status(a.url, secret)
        assert (after["role"], after["head_lsn"], after["fenced"]) == ("primary", head_a, None)
        assert write(a.url, [user_op("u2")]).status_code == 200
    finally:
        c.stop()
