"""Login throughput over HTTP, in-process (FastAPI TestClient), and what argon2 costs.

    python bench/login.py [--logins N] [--seconds S] [--threads 1,2] [--fast] [--postgres]

Each login is POST /t/{tenant}/login: argon2id verify + a write transaction (counters,
audit event) + a session row. The peer figure from the same run is argon2-cffi verifying
the same hash with the same parameters and nothing else, so the ratio shows what the
HTTP layer, the store and the change log add on top of the hash."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient  # noqa: E402
from tests.support.sites import load_site, make_site_dir  # noqa: E402

from standby.identity.passwords import Passwords  # noqa: E402
from standby.server import Site, create_app  # noqa: E402
from standby.store import Store  # noqa: E402

PASSWORD = "correct horse battery staple"


def build(root: Path, store_url: str | None, fast: bool) -> tuple[Site, TestClient]:
    extra: dict[str, Any] = {"lockout": {"max_failures": 1000}}
    if not fast:  # production defaults from settings.py
        extra["password"] = {"time_cost": 3, "memory_cost": 65536, "parallelism": 4}
    config = make_site_dir(root, "bench", store_url=store_url, extra=extra)
    settings, secrets = load_site(config)
    store = Store(settings.store.url, settings.site)
    store.create()
    site = Site(settings, secrets, store)
    client = TestClient(create_app(site))
    admin = {"Authorization": f"Bearer {secrets.admin_token.get_secret_value()}"}
    assert client.post(
        "/admin/tenants", json={"id": "bench", "name": "B"}, headers=admin
    ).is_success
    r = client.post(
        "/admin/tenants/bench/users",
        json={"username": "alice", "password": PASSWORD},
        headers=admin,
    )
    assert r.is_success, r.text
    return site, client


def run_logins(
    client: TestClient, count: int, seconds: float, threads: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    errors: list[str] = []

    def worker() -> None:
        local = TestClient(client.app)
        for _ in range(max(1, count // threads)):
            if time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            r = local.post("/t/bench/login", json={"username": "alice", "password": PASSWORD})
            dt = time.perf_counter() - t0
            if r.status_code != 200:
                errors.append(r.text)
                break
            with lock:
                latencies.append(dt)
        local.close()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"login failed: {errors[0]}")
    return len(latencies) / elapsed, latencies


def raw_verify(pw: Passwords, count: int, seconds: float) -> float:
    h = pw.hash(PASSWORD)
    deadline = time.perf_counter() + seconds
    n = 0
    started = time.perf_counter()
    while n < count and time.perf_counter() < deadline:
        pw.verify(h, PASSWORD)
        n += 1
    return n / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--logins", type=int, default=200, help="logins per measurement")
    ap.add_argument("--seconds", type=float, default=15.0, help="time cap per measurement")
    ap.add_argument("--threads", default="1,2", help="concurrent clients")
    ap.add_argument("--fast", action="store_true", help="the test suite's cheap argon2 parameters")
    ap.add_argument("--postgres", action="store_true", help="store on PostgreSQL (else SQLite)")
    args = ap.parse_args()
    server = None
    url = None
    if args.postgres:
        from tests.support.postgres import PostgresServer

        server = PostgresServer().start()
        url = server.url(server.create_database())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            site, client = build(Path(tmp), url, args.fast)
            p = site.settings.password
            print(
                f"argon2id time_cost={p.time_cost} memory_cost={p.memory_cost} KiB "
                f"parallelism={p.parallelism}; store {'postgresql' if url else 'sqlite'}",
                flush=True,
            )
            peer = raw_verify(Passwords(p), args.logins, args.seconds)
            print(f"peer: argon2-cffi verify alone       {peer:8.1f}/s", flush=True)
            for n in (int(t) for t in args.threads.split(",") if t):
                rate, lat = run_logins(client, args.logins, args.seconds, n)
                lat.sort()
                p50 = statistics.median(lat) * 1000
                p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
                print(
                    f"login over HTTP, {n} client(s)       {rate:8.1f}/s  p50 {p50:7.1f} ms  "
                    f"p99 {p99:7.1f} ms  ratio to peer {rate / peer:.2f}  ({len(lat)} logins)",
                    flush=True,
                )
            client.close()
            site.store.close()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
