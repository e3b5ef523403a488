"""Failover RTO, client-visible errors, switchover time and failback duration on
loopback, real processes, through the builtin router and through HAProxy.

    python bench/failover.py [--runs 10] [--stores sqlite,postgres] [--modes async,sync]
                             [--traffic builtin,haproxy]

Per traffic layer, store and replication mode: one cluster (controller + the builtin
router or a real HAProxy the controller drives + two `standby serve` sites, automatic
mode, topology defaults). Each run drives the drill workload through the traffic layer
(logins, user writes, token requests; 4 clients, about 50 requests/s, each client
waiting up to 10 s as a browser would), kill -9s the current primary and measures, from
the kill:
  - RTO: the first successful login (POST /t/{tenant}/login -> 200) THROUGH THE LAYER;
  - promote: when the controller's event log says the standby was promoted;
  - errors: every workload request that failed (by kind), before, during and after;
  - latency p50/p99 of the requests sent before, during (kill -> RTO) and after;
  - acknowledged writes missing on the new primary (RPO).
The killed site is then restarted, rejoins as a standby, and the next run kills the
other one. Then one planned switchover and one failback (with the 10/25/50/100 ramp,
topology default 2 s a step) are timed with the same workload running, and the errors
its clients saw are counted.

The peer figure (Patroni + etcd + HAProxy, kill -9 of the leader -> first write) was
measured on this kind of machine and is quoted from the issue, not run here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.cluster import Cluster, make_cluster  # noqa: E402
from tests.support.edge import HaproxyProcess  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

from standby.cluster.topology import load_topology  # noqa: E402
from standby.drills import measure  # noqa: E402
from standby.drills.workload import OidcClient, Workload, WorkloadConfig  # noqa: E402

WARMUP_S, SETTLE_S = 2.0, 2.0  # workload before the kill, and after the first login
PAUSE_S = 0.07  # per client between requests: 4 clients make about 50 requests/s
PATRONI_DEFAULTS_S = 29.0
PATRONI_LOWEST_S = 20.0
TENANT, USER, PASSWORD = "bench", "alice", "correct-horse-battery"
LAYERS = {"builtin": "the router", "haproxy": "HAProxy"}


def other(name: str) -> str:
    return "site-b" if name == "site-a" else "site-a"


def setup_identity(c: Cluster) -> WorkloadConfig:
    c.wait_writable("site-a")
    assert c.write("site-a", TENANT).status_code == 201
    users = [(USER, PASSWORD)] + [(f"user{i}", f"{PASSWORD}-{i}") for i in range(7)]
    for username, password in users:
        r = httpx.post(
            f"{c.urls['site-a']}/admin/tenants/{TENANT}/users",
            json={"username": username, "password": password},
            headers=c.admin(),
            timeout=10,
        )
        assert r.status_code == 201, r.text
    r = httpx.post(
        f"{c.urls['site-a']}/admin/tenants/{TENANT}/clients",
        json={
            "name": "bench-app",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "scopes": ["openid", "offline_access"],
            "token_endpoint_auth_method": "client_secret_basic",
        },
        headers=c.admin(),
        timeout=10,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    client = OidcClient(str(body["client_id"]), body["client_secret"], "http://127.0.0.1/callback")
    return WorkloadConfig(
        c.router_url, TENANT, c.admin_token, users, client, concurrency=4, pause=PAUSE_S
    )


def usernames(c: Cluster, site: str) -> set[str]:
    names: set[str] = set()
    after: str | None = None
    for _ in range(1000):  # bounded paging
        params: dict[str, Any] = {"limit": 1000, **({"after": after} if after else {})}
        r = httpx.get(
            f"{c.urls[site]}/admin/tenants/{TENANT}/users",
            params=params,
            headers=c.admin(),
            timeout=10,
        )
        r.raise_for_status()
        names.update(u["username"] for u in r.json()["users"])
        after = r.json().get("next")
        if not after:
            break
    return names


def settle(c: Cluster, primary: str) -> None:
    """Both sites healthy in the controller's eyes, standby caught up, traffic on primary."""

    def ready() -> bool:
        st = c.status()
        sites = {s["name"]: s for s in st["sites"]}
        standby = c.site_status(other(primary)) or {}
        head = (c.site_status(primary) or {}).get("head_lsn")
        return bool(
            st["primary"] == primary
            and all(s.get("ready") and not s["down"] for s in sites.values())
            and standby.get("role") == "standby"
            and standby.get("applied_lsn") == head
            and (st.get("traffic") or {}).get(primary) == 100
        )

    c.wait_for("cluster to settle", ready, timeout=60, every=0.1)


def one_failover(c: Cluster, primary: str, config: WorkloadConfig, run: int) -> dict[str, Any]:
    settle(c, primary)
    return asyncio.run(_failover_under_load(c, primary, config, run))


@contextlib.asynccontextmanager
async def workload(
    config: WorkloadConfig, prefix: str, max_seconds: float
) -> AsyncIterator[Workload]:
    """The workload running through the traffic layer, warmed up; stopped on leaving."""
    config.write_prefix = prefix
    load = Workload(config)
    await load.prepare_tokens()
    stop = asyncio.Event()
    running = asyncio.create_task(load.run(stop, max_seconds=max_seconds))
    try:
        await asyncio.sleep(WARMUP_S)
        yield load
    finally:
        stop.set()
        await running


async def _failover_under_load(
    c: Cluster, primary: str, config: WorkloadConfig, run: int
) -> dict[str, Any]:
    async with workload(config, f"r{run}", 120) as load:
        killed_wall, killed = time.time(), time.monotonic()
        c.sites[primary].kill()
        deadline = killed + 60
        while measure.rto(load.acks, killed) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("no login through the traffic layer within 60 s")
            await asyncio.sleep(0.01)
        await asyncio.sleep(SETTLE_S)
    present = await asyncio.to_thread(usernames, c, other(primary))
    summary = measure.summarize(load.acks, present, killed)
    promoted = [
        e["at"] - killed_wall
        for e in c.events()
        if e["kind"] == "promoted" and e["at"] > killed_wall and e["site"] == other(primary)
    ]
    c.start_site(primary)  # comes back, is fenced and follows the new primary
    return {
        "rto": summary["rto_s"],
        "promote": promoted[0] if promoted else float("nan"),
        "requests": summary["requests"],
        "rate": summary["requests"] / (load.acks[-1].recv_mono - load.acks[0].send_mono),
        "failed": summary["failed"],
        "errors": summary["errors"],
        "latency": summary["latency"],
        "lost_writes": summary["rpo"]["lost"],
        "acknowledged_writes": summary["rpo"]["acknowledged_writes"],
        "dual_primaries": len(summary["dual_primaries"]),
        "token_requests": load.grant_note,
    }


def timed_post(c: Cluster, path: str, to: str, config: WorkloadConfig) -> dict[str, Any]:
    """The operator's call, timed, with the workload running through the traffic layer."""
    return asyncio.run(_timed_under_load(c, path, to, config))


async def _timed_under_load(
    c: Cluster, path: str, to: str, config: WorkloadConfig
) -> dict[str, Any]:
    async with workload(config, path.strip("/")[:2], 300) as load:
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=300) as client:
            r = await client.post(f"{c.controller_url}{path}", json={"to": to}, headers=c.admin())
        wall = time.monotonic() - started
        await asyncio.sleep(SETTLE_S)
    if r.status_code != 200:
        raise RuntimeError(f"{path} {to}: {r.status_code} {r.text}")
    during = [a for a in load.acks if a.send_mono >= started]
    return {
        **r.json(),
        "wall": wall,
        "requests": len(during),
        "failed": sum(not a.ok for a in during),
        "errors": measure.errors_by_kind(during),
    }


def bench_store(
    traffic: str, kind: str, mode: str, runs: int, pg: PostgresServer | None
) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"bench-failover-{traffic}-{kind}-{mode}-"))
    stores = None
    if pg is not None:
        stores = {"site-a": pg.url(pg.create_database()), "site-b": pg.url(pg.create_database())}
    layer: dict[str, Any] = {"backend": traffic}
    if traffic == "haproxy":
        layer["haproxy"] = {"socket": str(root / "haproxy.sock")}
    c = make_cluster(  # topology defaults
        root,
        store_urls=stores,
        lease_ttl=1.0,
        site_extra={"replication": {"mode": mode}},
        traffic=layer,
    )
    haproxy = None
    try:
        if traffic == "haproxy":  # before the controller, which then drives it
            haproxy = HaproxyProcess(load_topology(c.topology)[0], root).start()
        c.start(router=traffic == "builtin")
        config = setup_identity(c)
        primary = "site-a"
        results = []
        for i in range(runs):
            got = one_failover(c, primary, config, i)
            results.append(got)
            during = got["latency"]["during"]
            print(
                f"  {traffic}/{kind}/{mode} run {i + 1}: RTO {got['rto']:.3f} s "
                f"(promoted at {got['promote']:.3f} s); {got['requests']} requests at "
                f"{got['rate']:.0f}/s, {got['failed']} failed {got['errors'] or ''}; "
                f"p99 during the outage {_s(during['p99_s'])} (max {_s(during['max_s'])}); "
                f"lost writes {got['lost_writes']}/{got['acknowledged_writes']}",
                flush=True,
            )
            primary = other(primary)
        settle(c, primary)
        sw = timed_post(c, "/switchover", other(primary), config)
        primary = other(primary)
        settle(c, primary)
        fb = timed_post(c, "/failback", other(primary), config)
        return {"runs": results, "switchover": sw, "failback": fb}
    finally:
        c.stop()
        if haproxy is not None:
            haproxy.stop()


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def summary(values: list[float]) -> str:
    return (
        f"min {min(values):.3f} s, median {statistics.median(values):.3f} s, "
        f"max {max(values):.3f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--modes", default="async,sync", help="replication modes to run")
    ap.add_argument("--traffic", default="builtin,haproxy", help="traffic layers to run")
    ap.add_argument("--json", dest="json_out", default=None, help="also write results here")
    args = ap.parse_args()
    out: dict[str, Any] = {}
    pg = None
    try:
        for traffic in args.traffic.split(","):
            if traffic not in LAYERS:
                ap.error(f"--traffic {traffic!r}: use builtin and/or haproxy")
            for kind in args.stores.split(","):
                for mode in args.modes.split(","):
                    if kind == "postgres" and pg is None:
                        pg = PostgresServer().start()
                    out[f"{traffic}/{kind}/{mode}"] = bench_store(
                        traffic, kind, mode, args.runs, pg if kind == "postgres" else None
                    )
    finally:
        if pg is not None:
            pg.stop()
    load = os.getloadavg()
    print(
        "\nfailover, automatic mode, kill -9 of the primary (topology defaults); "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs:"
    )
    for kind, res in out.items():
        rtos = [r["rto"] for r in res["runs"]]
        promotes = [r["promote"] for r in res["runs"]]
        med = statistics.median(rtos)
        failed = sum(r["failed"] for r in res["runs"])
        requests = sum(r["requests"] for r in res["runs"])
        kinds: dict[str, int] = {}
        for r in res["runs"]:
            for op, errs in r["errors"].items():
                for err, n in errs.items():
                    kinds[f"{op}: {err}"] = kinds.get(f"{op}: {err}", 0) + n
        p99s = [r["latency"]["during"]["p99_s"] or 0.0 for r in res["runs"]]
        over = [
            r["latency"]["during"]["p99_s"] - r["rto"]
            for r in res["runs"]
            if r["latency"]["during"]["p99_s"] is not None
        ]
        print(
            f"  {kind}: client-visible errors {failed} of {requests} requests over "
            f"{len(rtos)} kill -9 runs (target 0) {kinds or ''}"
        )
        print(
            f"  {kind}: p99 latency during the outage: {summary(p99s)}; p99 - RTO at most "
            f"{max(over, default=0.0):.3f} s (target <= 0.5 s)"
        )
        print(
            f"  {kind}: acknowledged writes lost "
            f"{sum(r['lost_writes'] for r in res['runs'])} of "
            f"{sum(r['acknowledged_writes'] for r in res['runs'])}; dual-primary "
            f"acknowledgements {sum(r['dual_primaries'] for r in res['runs'])}"
        )
        layer = LAYERS[kind.split("/")[0]]
        print(
            f"  {kind}: RTO to first login through {layer} over {len(rtos)} runs: {summary(rtos)}"
        )
        print(f"  {kind}: kill -> promoted (controller event): {summary(promotes)}")
        print(
            f"  {kind}: vs Patroni+etcd+HAProxy (quoted, ~{PATRONI_DEFAULTS_S:.0f} s defaults / "
            f"~{PATRONI_LOWEST_S:.0f} s lowest): {PATRONI_DEFAULTS_S / med:.1f}x / "
            f"{PATRONI_LOWEST_S / med:.1f}x faster"
        )
        sw, fb = res["switchover"], res["failback"]
        print(
            f"  {kind}: switchover {sw['seconds']:.3f} s (controller), {sw['wall']:.3f} s "
            f"(operator call), head lsn {sw['head_lsn']}; client-visible errors "
            f"{sw['failed']} of {sw['requests']} requests {sw['errors'] or ''}"
        )
        print(
            f"  {kind}: failback {fb['seconds']:.3f} s incl. ramp "
            f"{fb['ramp']['steps']} ({fb['ramp']['state']}); client-visible errors "
            f"{fb['failed']} of {fb['requests']} requests (target 0) {fb['errors'] or ''}"
        )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
