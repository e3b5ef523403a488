"""Write throughput with the change log vs the same rows inserted without it.

    python bench/writes.py [--count N] [--seconds S] [--threads 1,2,4,8] [--skip-postgres]

For SQLite and PostgreSQL: user-create and session-create transactions per second through
``Store.write()`` (row + hash-chained change-log record, role/fence checks, advisory lock
on PostgreSQL) and through a baseline defined here that inserts the identical row in its
own transaction and nothing else. Then concurrent writers on PostgreSQL, both ways.
Each measurement stops at --count operations or --seconds, whichever comes first."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, insert, select, text  # noqa: E402

from standby.identity.passwords import Passwords  # noqa: E402
from standby.identity.tokens import new_id, new_token, token_hash  # noqa: E402
from standby.settings import PasswordSettings  # noqa: E402
from standby.store import GENESIS_HASH, Store, now_us  # noqa: E402
from standby.store.records import canonical_json, chain_hash  # noqa: E402
from standby.store.schema import change_log, sessions, tenants, users  # noqa: E402
from standby.store.store import ADVISORY_LOCK_KEY  # noqa: E402

Row = Callable[[], tuple[str, dict[str, Any]]]


def user_row(password_hash: str) -> Row:
    def make() -> tuple[str, dict[str, Any]]:
        at = now_us()
        uid = new_id()
        return "users", {
            "id": uid, "tenant": "bench", "username": f"u-{uid}", "email": f"{uid}@example.test",
            "display_name": None, "password_hash": password_hash, "disabled": False,
            "failed_logins": 0, "locked_until": None, "totp_secret": None, "totp_enabled": False,
            "totp_last_step": None, "created_at": at, "updated_at": at,
        }  # fmt: skip

    return make


def session_row() -> tuple[str, dict[str, Any]]:
    at = now_us()
    return "sessions", {
        "id": token_hash(new_token()), "tenant": "bench", "user_id": "bench-user",
        "created_at": at, "last_seen": at, "expires_at": at + 43_200_000_000,
        "revoked_at": None, "amr": '["pwd"]', "auth_time": at,
    }  # fmt: skip


TABLES = {"users": users, "sessions": sessions}


def with_log(store: Store, make: Row) -> None:
    name, row = make()
    with store.write() as w:
        w.insert(name, row)


def without_log(store: Store, make: Row) -> None:
    """Baseline: the same row, its own transaction (BEGIN IMMEDIATE on SQLite, as the
    write path uses), no change-log append, no role/fence checks."""
    name, row = make()
    conn = store.engine.connect()
    if not store.is_postgres:
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
    try:
        with conn.begin():
            conn.execute(insert(TABLES[name]).values(**row))
    finally:
        conn.close()


def statements_per_txn(store: Store, fn: Callable[[Store, Row], None]) -> list[str]:
    """The SQL statements one transaction of ``fn`` sends (first words), to explain costs."""
    seen: list[str] = []

    def listener(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()[:3]))

    event.listen(store.engine, "before_cursor_execute", listener)
    try:
        fn(store, session_row)
    finally:
        event.remove(store.engine, "before_cursor_execute", listener)
    return seen


def log_only(store: Store, make: Row) -> None:
    """The change log's own cost, without the write path's extras (role/fence/epoch reads,
    savepoint): the row, the head, the hash, the log insert, in one transaction. Shows
    how much of the overhead is the log itself and how much the surrounding checks."""
    name, row = make()
    conn = store.engine.connect()
    if not store.is_postgres:
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
    try:
        with conn.begin():
            if store.is_postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
            conn.execute(insert(TABLES[name]).values(**row))
            head = conn.execute(
                select(change_log.c.lsn, change_log.c.hash)
                .order_by(change_log.c.lsn.desc())
                .limit(1)
            ).first()
            lsn, prev = (head.lsn + 1, head.hash) if head else (1, GENESIS_HASH)
            at, payload = now_us(), canonical_json(row)
            digest = chain_hash(
                prev, lsn, 1, store.site, at, lsn, "bench", name, row["id"], "insert", payload
            )
            conn.execute(
                insert(change_log).values(
                    lsn=lsn,
                    epoch=1,
                    site=store.site,
                    committed_at=at,
                    txn=lsn,
                    tenant="bench",
                    entity=name,
                    key=row["id"],
                    op="insert",
                    payload=payload,
                    prev_hash=prev,
                    hash=digest,
                )
            )
    finally:
        conn.close()


def measure(op: Callable[[], None], count: int, seconds: float, threads: int = 1) -> float:
    """Operations per second over ``threads`` threads sharing ``count`` operations."""
    done = [0] * threads
    errors: list[BaseException] = []
    deadline = time.perf_counter() + seconds
    share = max(1, count // threads)

    def worker(i: int) -> None:
        try:
            for _ in range(share):
                if time.perf_counter() > deadline:
                    return
                op()
                done[i] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return sum(done) / elapsed


def prepare(url: str) -> Store:
    store = Store(url, "bench")
    store.create()
    with store.write() as w:
        w.insert(tenants, {"id": "bench", "tenant": "bench", "name": "bench", "created_at": 1})
    return store


def run_backend(
    name: str, url: str, args: argparse.Namespace, pw_hash: str
) -> list[dict[str, Any]]:
    store = prepare(url)
    out = []
    for fn in (with_log, without_log):
        stmts = statements_per_txn(store, fn)
        print(f"{name:<11} {fn.__name__}: {len(stmts)} statements per transaction: "
              + "; ".join(stmts), flush=True)  # fmt: skip
    for what, make in (("user-create", user_row(pw_hash)), ("session-create", session_row)):
        # warm up both paths, then alternate to spread noise evenly
        for fn in (with_log, without_log):
            measure(lambda fn=fn, make=make: fn(store, make), 50, 5)
        logged, base, minimal = [], [], []
        for _ in range(args.rounds):
            base.append(measure(lambda m=make: without_log(store, m), args.count, args.seconds))
            logged.append(measure(lambda m=make: with_log(store, m), args.count, args.seconds))
            minimal.append(measure(lambda m=make: log_only(store, m), args.count, args.seconds))
        lo, ba, mi = max(logged), max(base), max(minimal)
        out.append(
            {"backend": name, "op": what, "threads": 1, "with_log_ops": round(lo),
             "baseline_ops": round(ba), "overhead_pct": round(100 * (ba - lo) / ba, 1),
             "log_only_ops": round(mi), "log_only_overhead_pct": round(100 * (ba - mi) / ba, 1)}
        )  # fmt: skip
        print_row(out[-1])
    if name == "postgresql":
        for n in args.threads:
            ba = measure(lambda: without_log(store, session_row), args.count, args.seconds, n)
            lo = measure(lambda: with_log(store, session_row), args.count, args.seconds, n)
            out.append(
                {"backend": name, "op": "session-create concurrent", "threads": n,
                 "with_log_ops": round(lo), "baseline_ops": round(ba),
                 "overhead_pct": round(100 * (ba - lo) / ba, 1)}
            )  # fmt: skip
            print_row(out[-1])
    store.close()
    return out


def print_row(r: dict[str, Any]) -> None:
    extra = ""
    if "log_only_ops" in r:
        extra = (
            f"   [row + log append only {r['log_only_ops']:>6}/s, "
            f"overhead {r['log_only_overhead_pct']}%]"
        )
    print(
        f"{r['backend']:<11} {r['op']:<26} threads={r['threads']:<2} "
        f"Store.write {r['with_log_ops']:>6}/s   baseline (no log) {r['baseline_ops']:>6}/s   "
        f"overhead {r['overhead_pct']:>5}%   ratio {r['with_log_ops'] / r['baseline_ops']:.2f}"
        + extra,
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=2000, help="operations per measurement")
    ap.add_argument("--seconds", type=float, default=6.0, help="time cap per measurement")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (best is kept)")
    ap.add_argument("--threads", default="1,2,4,8", help="PostgreSQL concurrent writers")
    ap.add_argument("--skip-postgres", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the results as JSON at the end")
    args = ap.parse_args()
    args.threads = [int(t) for t in args.threads.split(",") if t]
    # a realistic stored hash (the row's size matters to the log, its cost does not)
    pw_hash = Passwords(PasswordSettings()).hash(secrets.token_urlsafe(16))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results += run_backend("sqlite", f"sqlite:///{tmp}/bench.db", args, pw_hash)
    if not args.skip_postgres:
        from tests.support.postgres import PostgresServer

        server = PostgresServer().start()
        try:
            results += run_backend(
                "postgresql", server.url(server.create_database()), args, pw_hash
            )
        finally:
            server.stop()
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
