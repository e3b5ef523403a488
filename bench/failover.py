"""Failover RTO, switchover time and failback duration on loopback, real processes.

    python bench/failover.py [--runs 10] [--stores sqlite,postgres]

Per store: one cluster (controller + builtin router + two `standby serve` sites,
automatic mode, topology defaults). Each run kill -9s the current primary and
measures, from the kill:
  - RTO: the first successful login (POST /t/{tenant}/login -> 200) THROUGH THE ROUTER;
  - promote: when the controller's event log says the standby was promoted.
The killed site is then restarted, rejoins as a standby, and the next run kills the
other one. Then one planned switchover and one failback (with the 10/25/50/100 ramp,
topology default 2 s a step) are timed.

The peer figure (Patroni + etcd + HAProxy, kill -9 of the leader -> first write) was
measured on this kind of machine and is quoted from the issue, not run here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.cluster import Cluster, make_cluster  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

PATRONI_DEFAULTS_S = 29.0
PATRONI_LOWEST_S = 20.0
TENANT, USER, PASSWORD = "bench", "alice", "correct-horse-battery"


def other(name: str) -> str:
    return "site-b" if name == "site-a" else "site-a"


def login_via_router(c: Cluster, client: httpx.Client) -> bool:
    try:
        r = client.post(
            f"{c.router_url}/t/{TENANT}/login",
            json={"username": USER, "password": PASSWORD},
            timeout=1.0,
        )
    except httpx.HTTPError:
        return False
    return r.status_code == 200


def setup_identity(c: Cluster) -> None:
    c.wait_writable("site-a")
    assert c.write("site-a", TENANT).status_code == 201
    r = httpx.post(
        f"{c.urls['site-a']}/admin/tenants/{TENANT}/users",
        json={"username": USER, "password": PASSWORD},
        headers=c.admin(),
        timeout=10,
    )
    assert r.status_code == 201, r.text


def settle(c: Cluster, primary: str) -> None:
    """Both sites healthy in the controller's eyes, standby caught up, router on primary."""

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


def one_failover(c: Cluster, primary: str) -> dict[str, float]:
    settle(c, primary)
    with httpx.Client() as client:
        assert login_via_router(c, client), "login works before the fault"
        killed_wall = time.time()
        killed = time.monotonic()
        c.sites[primary].kill()
        deadline = killed + 60
        while not login_via_router(c, client):
            if time.monotonic() > deadline:
                raise RuntimeError("no login through the router within 60 s")
            time.sleep(0.01)
        rto = time.monotonic() - killed
    promoted = [
        e["at"] - killed_wall
        for e in c.events()
        if e["kind"] == "promoted" and e["at"] > killed_wall and e["site"] == other(primary)
    ]
    c.start_site(primary)  # comes back, is fenced and follows the new primary
    return {"rto": rto, "promote": promoted[0] if promoted else float("nan")}


def timed_post(c: Cluster, path: str, to: str) -> dict[str, Any]:
    started = time.monotonic()
    r = httpx.post(f"{c.controller_url}{path}", json={"to": to}, headers=c.admin(), timeout=300)
    if r.status_code != 200:
        raise RuntimeError(f"{path} {to}: {r.status_code} {r.text}")
    return {**r.json(), "wall": time.monotonic() - started}


def bench_store(kind: str, runs: int, pg: PostgresServer | None) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"bench-failover-{kind}-"))
    stores = None
    if pg is not None:
        stores = {"site-a": pg.url(pg.create_database()), "site-b": pg.url(pg.create_database())}
    c = make_cluster(root, store_urls=stores, lease_ttl=1.0)  # topology defaults
    try:
        c.start(router=True)
        setup_identity(c)
        primary = "site-a"
        results = []
        for i in range(runs):
            got = one_failover(c, primary)
            results.append(got)
            print(
                f"  {kind} run {i + 1}: RTO {got['rto']:.3f} s "
                f"(promoted at {got['promote']:.3f} s)",
                flush=True,
            )
            primary = other(primary)
        settle(c, primary)
        sw = timed_post(c, "/switchover", other(primary))
        primary = other(primary)
        settle(c, primary)
        fb = timed_post(c, "/failback", other(primary))
        return {"runs": results, "switchover": sw, "failback": fb}
    finally:
        c.stop()


def summary(values: list[float]) -> str:
    return (
        f"min {min(values):.3f} s, median {statistics.median(values):.3f} s, "
        f"max {max(values):.3f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--json", dest="json_out", default=None, help="also write results here")
    args = ap.parse_args()
    out: dict[str, Any] = {}
    pg = None
    try:
        for kind in args.stores.split(","):
            if kind == "postgres" and pg is None:
                pg = PostgresServer().start()
            out[kind] = bench_store(kind, args.runs, pg if kind == "postgres" else None)
    finally:
        if pg is not None:
            pg.stop()
    print("\nfailover, automatic mode, kill -9 of the primary (topology defaults):")
    for kind, res in out.items():
        rtos = [r["rto"] for r in res["runs"]]
        promotes = [r["promote"] for r in res["runs"]]
        med = statistics.median(rtos)
        print(
            f"  {kind}: RTO to first login through the router over {len(rtos)} runs: "
            f"{summary(rtos)}"
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
            f"(operator call), head lsn {sw['head_lsn']}"
        )
        print(
            f"  {kind}: failback {fb['seconds']:.3f} s incl. ramp "
            f"{fb['ramp']['steps']} ({fb['ramp']['state']})"
        )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
