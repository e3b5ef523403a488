"""Builtin router throughput and latency, against going direct and against HAProxy.

    python bench/router.py [--requests N] [--concurrency C] [--body BYTES] [--rounds R]
                           [--client ab|python]

One small upstream (uvicorn, answers with a Standby-Site header and BYTES of body) in its
own process; in front of it, in the same run: nothing (direct), `standby router`, and
HAProxy (Debian package) with the config the haproxy backend writes. The load generator
is the same for all three: ApacheBench (`ab -k`, Debian apache2-utils) when installed, else
one Python process (httpx, keep-alive); ab speaks HTTP/1.0, which uvicorn does not keep
alive, so direct and router connect per request while HAProxy keeps its client side open.
Rounds are interleaved so that other load on the machine hits all three alike."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from standby.cluster.topology import Topology  # noqa: E402
from standby.cluster.traffic.haproxy_config import render_config  # noqa: E402
from standby.drills.local_cluster import free_port  # noqa: E402

UPSTREAM = """
import sys, uvicorn
size = int(sys.argv[2])
body = b"x" * size
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(size).encode()),
               (b"standby-site", b"site-a"), (b"standby-epoch", b"1")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def start(argv: list[str], url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{argv[0]} exited: {log.read_text()[-1000:]}")
        try:
            httpx.get(url, timeout=0.5)
            return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit(f"{argv} did not start")


async def load(url: str, requests: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    remaining = requests
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                try:
                    resp = await client.get(url)
                    resp.raise_for_status()
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - t0)

        for _ in range(20):  # warm-up: connections open, caches warm
            await client.get(url)
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        took = time.perf_counter() - began
    latencies.sort()
    return {
        "rps": len(latencies) / took,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "errors": errors,
    }


def load_ab(url: str, requests: int, concurrency: int) -> dict[str, float]:
    """The same measurement with ApacheBench (C, so the client is not the bottleneck)."""
    out = subprocess.run(
        ["ab", "-q", "-k", "-n", str(requests), "-c", str(concurrency), url],
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    fields: dict[str, float] = {"errors": 0.0}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests per second:"):
            fields["rps"] = float(parts[3])
        elif line.startswith("Failed requests:"):
            fields["errors"] += float(parts[2])
        elif line.strip().startswith("50%"):
            fields["p50_ms"] = float(parts[1])
        elif line.strip().startswith("99%"):
            fields["p99_ms"] = float(parts[1])
    if "rps" not in fields:
        raise SystemExit(f"ab gave no figures for {url}:\n{out[-1000:]}")
    return fields


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--body", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median taken)")
    ap.add_argument(
        "--client",
        choices=["ab", "python"],
        default="ab" if shutil.which("ab") else "python",
        help="load generator: ApacheBench (apache2-utils) or httpx",
    )
    args = ap.parse_args()
    haproxy = shutil.which("haproxy")
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        try:
            up_port, router_port, ha_port = free_port(), free_port(), free_port()
            upstream = f"http://127.0.0.1:{up_port}"
            (root / "up.py").write_text(UPSTREAM)
            procs.append(
                start(
                    [sys.executable, str(root / "up.py"), str(up_port), str(args.body)],
                    upstream,
                    root / "up.log",
                )
            )
            topo_data = {
                "secrets_file": "secrets.yaml",
                "traffic": {"listen": f"http://127.0.0.1:{router_port}"},
                "sites": [{"name": "site-a", "url": upstream, "role": "primary"}],
            }
            (root / "secrets.yaml").write_text(
                yaml.safe_dump({"admin_token": "bench-admin", "replication_secret": "bench-repl"})
            )
            (root / "topology.yaml").write_text(yaml.safe_dump(topo_data))
            router_url = f"http://127.0.0.1:{router_port}"
            procs.append(
                start(
                    [
                        sys.executable,
                        "-m",
                        "standby.cli",
                        "router",
                        "--topology",
                        str(root / "topology.yaml"),
                        "--log-level",
                        "warning",
                    ],
                    router_url,
                    root / "router.log",
                )
            )
            targets = {"direct": upstream, "builtin router": router_url}
            if haproxy:
                topo = Topology.model_validate(
                    {
                        **topo_data,
                        "traffic": {"listen": f"http://127.0.0.1:{ha_port}", "backend": "haproxy"},
                    }
                )
                (root / "haproxy.cfg").write_text(render_config(topo, str(root / "ha.sock")))
                ha_url = f"http://127.0.0.1:{ha_port}"
                procs.append(
                    start(
                        [haproxy, "-db", "-f", str(root / "haproxy.cfg")],
                        ha_url,
                        root / "haproxy.log",
                    )
                )
                targets["haproxy"] = ha_url
            else:
                print("haproxy not installed: no peer figure (apt-get install haproxy)")
            # interleave rounds so that load from elsewhere on the machine hits all alike
            rounds: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
            for _ in range(args.rounds):
                for name, url in targets.items():
                    per_round = max(1, args.requests // args.rounds)
                    if args.client == "ab":
                        figures = load_ab(f"{url}/bench", per_round, args.concurrency)
                    else:
                        figures = asyncio.run(load(f"{url}/bench", per_round, args.concurrency))
                    rounds[name].append(figures)
            results = {
                name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                for name, rs in rounds.items()
            }
            print(
                f"GET, {args.body}-byte body, {args.requests} requests in {args.rounds} "
                f"interleaved rounds (medians), concurrency {args.concurrency}, "
                f"client {args.client}, {os.cpu_count()} cores"
            )
            for name, r in results.items():
                print(
                    f"  {name:15s} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
                    f"p99 {r['p99_ms']:6.2f} ms  errors {r['errors']:.0f}"
                )
            direct, builtin = results["direct"], results["builtin router"]
            print(
                f"  builtin/direct throughput ratio {builtin['rps'] / direct['rps']:.2f}, "
                f"added p50 latency {builtin['p50_ms'] - direct['p50_ms']:.2f} ms"
            )
            if "haproxy" in results:
                ha = results["haproxy"]
                print(
                    f"  haproxy/direct throughput ratio {ha['rps'] / direct['rps']:.2f}, "
                    f"added p50 latency {ha['p50_ms'] - direct['p50_ms']:.2f} ms"
                )
                print(f"  builtin/haproxy throughput ratio {builtin['rps'] / ha['rps']:.2f}")
        finally:
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(10)


if __name__ == "__main__":
    main()
