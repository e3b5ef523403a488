"""Backup and restore throughput, and backup RPO.

    python bench/backup.py [--users 100000] [--skip-postgres] [--rpo-seconds 15] [--s3]
                           [--only-rpo]

1. Builds a store of N users, N sessions and N audit events (with their hash-chained
   change-log records, written by this bench's bulk path), on SQLite and PostgreSQL.
2. Backup (snapshot + zstd + AES-256-GCM envelope + manifest into a local directory) and
   restore (into an empty store, atomically) in MB/s of the store's size and rows/s,
   side by side in the same run with the peer pipeline:
   SQLite: `sqlite3 .backup` + `zstd` + `openssl enc -aes-256-cbc` (restore: openssl -d |
   zstd -d); PostgreSQL: `pg_dump | zstd` (restore: `zstd -d | psql`).
3. Backup RPO: a steady write load with the segment archiver running; for each write the
   time from its commit to the segment holding it being durable in the backup store,
   p50/p99, for a few segment_seconds settings."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from standby.backup.context import Backups  # noqa: E402
from standby.backup.create import create_set  # noqa: E402
from standby.backup.plan import Target  # noqa: E402
from standby.backup.restore import restore  # noqa: E402
from standby.backup.segments import Archiver  # noqa: E402
from standby.server import Site  # noqa: E402
from standby.settings import BackupSettings, Secrets, SiteSettings, new_key  # noqa: E402
from standby.store import Store, now_us  # noqa: E402
from standby.store.records import Record, canonical_json, chain_hash  # noqa: E402
from standby.store.schema import audit_events, change_log, sessions, tenants, users  # noqa: E402

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$" + "h" * 43
BATCH = 5000


def _rows(n: int) -> list[tuple[Any, dict[str, Any]]]:
    at = now_us()
    out: list[tuple[Any, dict[str, Any]]] = [
        (tenants, {"id": "bench", "tenant": "bench", "name": "Bench", "created_at": at})
    ]
    for i in range(n):
        uid = f"user-{i:08d}"
        out.append((users, {
            "id": uid, "tenant": "bench", "username": f"user{i}", "email": f"user{i}@example.test",
            "display_name": f"User {i}", "password_hash": HASH, "disabled": False,
            "failed_logins": 0, "locked_until": None, "totp_secret": None, "totp_enabled": False,
            "totp_last_step": None, "created_at": at, "updated_at": at,
        }))  # fmt: skip
        out.append((sessions, {
            "id": f"{i:064x}", "tenant": "bench", "user_id": uid, "created_at": at,
            "last_seen": at, "expires_at": at + 43_200_000_000, "revoked_at": None,
            "amr": '["pwd"]', "auth_time": at,
        }))  # fmt: skip
        out.append((audit_events, {
            "id": f"audit-{i:08d}", "tenant": "bench", "at": at, "actor": "admin",
            "action": "user.create", "target": uid, "outcome": "ok",
            "detail": json.dumps({"username": f"user{i}", "remote": "127.0.0.1"}),
        }))  # fmt: skip
    return out


def fill(store: Store, n: int) -> int:
    """Rows and their change-log records, chained exactly as Store.write() chains them."""
    rows = _rows(n)
    head = store.head()
    prev, lsn, epoch = head.hash, head.lsn, store.epoch
    at = now_us()
    with store.engine.begin() as conn:
        for i in range(0, len(rows), BATCH):
            chunk = rows[i : i + BATCH]
            by_table: dict[Any, list[dict[str, Any]]] = {}
            log_rows = []
            txn = lsn + 1
            for table, row in chunk:
                by_table.setdefault(table, []).append(row)
                lsn += 1
                payload = canonical_json(row)
                h = chain_hash(
                    prev, lsn, epoch, store.site, at, txn, "bench", table.name, row["id"],
                    "insert", payload,
                )  # fmt: skip
                rec = Record(
                    lsn, epoch, store.site, at, txn, "bench", table.name, row["id"], "insert",
                    payload, prev, h,
                )  # fmt: skip
                log_rows.append(rec.to_dict())
                prev = h
            for table, trows in by_table.items():
                conn.execute(insert(table), trows)
            conn.execute(insert(change_log), log_rows)
    return len(rows)


def settings_for(root: Path, url: str) -> tuple[SiteSettings, Secrets]:
    settings = SiteSettings(
        site="bench",
        store={"url": url},  # type: ignore[arg-type]
        backup=BackupSettings(directory=str(root / "backups")),
    )
    secrets = Secrets(
        admin_token="x" * 20, kek=new_key(), replication_secret="y" * 20, backup_key=new_key()
    )
    return settings, secrets


def timed(cmd: str) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, executable="/bin/bash")  # noqa: S602
    return time.perf_counter() - t


def ours(settings: SiteSettings, secrets: Secrets, store: Store, target_url: str) -> dict[str, Any]:
    site = Site(settings, secrets, store)
    backups = Backups.open(settings, secrets)
    t = time.perf_counter()
    m = create_set(site, backups, canary=False)
    backup_s = time.perf_counter() - t
    t = time.perf_counter()
    restore(backups, target_url, Target())
    restore_s = time.perf_counter() - t
    return {
        "backup_s": backup_s,
        "restore_s": restore_s,
        "stored_bytes": sum(o["size"] for o in m["objects"]),
        "plain_bytes": m["plain_size"],
    }


def report(name: str, size: int, rows: int, r: dict[str, Any], peer: dict[str, Any]) -> None:
    mb = size / 1e6
    print(f"\n== {name}: store {mb:.1f} MB, {rows} rows (+ {rows} change-log records)")
    for who, d in (("standby", r), ("peer", peer)):
        print(
            f"  {who:8s} backup {d['backup_s']:6.2f} s = {mb / d['backup_s']:7.1f} MB/s "
            f"{2 * rows / d['backup_s']:9.0f} rows/s | restore {d['restore_s']:6.2f} s = "
            f"{mb / d['restore_s']:7.1f} MB/s {2 * rows / d['restore_s']:9.0f} rows/s"
            + (f" | stored {d['stored_bytes'] / 1e6:.1f} MB" if "stored_bytes" in d else "")
        )
    print(
        f"  ratio standby/peer: backup {peer['backup_s'] / r['backup_s']:.2f}x, "
        f"restore {peer['restore_s'] / r['restore_s']:.2f}x (>1 = standby faster)"
    )


def bench_sqlite(root: Path, n: int) -> None:
    src = root / "src.db"
    url = f"sqlite:///{src}"
    store = Store(url, "bench")
    store.create()
    t = time.perf_counter()
    rows = fill(store, n)
    print(f"built SQLite store: {rows} rows in {time.perf_counter() - t:.1f} s")
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    size = src.stat().st_size
    settings, secrets = settings_for(root, url)
    r = ours(settings, secrets, store, f"sqlite:///{root / 'restored.db'}")
    p = root / "peer"
    p.mkdir()
    backup_s = timed(
        f"sqlite3 {src} '.backup {p}/copy.db' && zstd -q -f {p}/copy.db -o {p}/copy.zst && "
        f"openssl enc -aes-256-cbc -pbkdf2 -pass pass:benchkey -in {p}/copy.zst -out {p}/copy.enc"
    )
    restore_s = timed(
        f"openssl enc -d -aes-256-cbc -pbkdf2 -pass pass:benchkey -in {p}/copy.enc | "
        f"zstd -d -q -o {p}/restored.db"
    )
    check_s = timed(f"sqlite3 {p}/restored.db 'PRAGMA integrity_check' >/dev/null")
    report("SQLite", size, rows, r, {"backup_s": backup_s, "restore_s": restore_s})
    print(
        f"  (peer restore + integrity_check {restore_s + check_s:.2f} s; standby's restore "
        "includes checksums, decryption, hash-chain link checks of replayed records)"
    )
    store.close()


def bench_postgres(root: Path, n: int) -> None:
    from tests.support.postgres import PostgresServer

    pg = PostgresServer().start()
    try:
        db = pg.create_database()
        store = Store(pg.url(db), "bench")
        store.create()
        t = time.perf_counter()
        rows = fill(store, n)
        print(f"built PostgreSQL store: {rows} rows in {time.perf_counter() - t:.1f} s")
        with store.engine.connect() as conn:
            size = int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar())
        settings, secrets = settings_for(root / "pg", pg.url(db))
        target = pg.create_database()
        r = ours(settings, secrets, store, pg.url(target))
        peer_db = pg.create_database()
        dump = root / "pg.sql.zst"
        conn_args = f"-h 127.0.0.1 -p {pg.port} -U postgres"
        backup_s = timed(f"pg_dump {conn_args} {db} | zstd -q -f -o {dump}")
        restore_s = timed(f"zstd -dc {dump} | psql -q {conn_args} -d {peer_db} >/dev/null")
        report("PostgreSQL", size, rows, r, {"backup_s": backup_s, "restore_s": restore_s})
        store.close()
    finally:
        pg.stop()


def bench_rpo(
    root: Path, seconds: float, rate: float, segment_seconds: float, s3: Any = None
) -> None:
    """Steady writes at ``rate``/s; archiver polling like the service does."""
    name = f"rpo-{segment_seconds}-{'s3' if s3 else 'local'}"
    url = f"sqlite:///{root / (name + '.db')}"
    store = Store(url, "bench")
    store.create()
    settings, secrets = settings_for(root / name, url)
    if s3 is not None:
        settings.backup = BackupSettings(
            backend="s3", s3_bucket=s3.shared_bucket(), s3_prefix=name, s3_endpoint=s3.endpoint
        )
        secrets = secrets.model_copy(
            update={
                "s3_access_key": SecretStr(s3.access_key),
                "s3_secret_key": SecretStr(s3.secret_key),
            }
        )
    backups = Backups.open(settings, secrets)
    archiver = Archiver(
        store, backups.catalog, segment_seconds=segment_seconds, segment_records=10000
    )
    archiver.tick(force=True)
    committed: dict[int, float] = {}
    durable: list[tuple[int, float]] = []
    stop = threading.Event()

    def archive() -> None:
        poll = min(max(segment_seconds / 4, 0.01), 1.0)
        while not stop.is_set():
            for m in archiver.tick():
                durable.append((int(m["last_lsn"]), time.time()))
            time.sleep(poll)

    th = threading.Thread(target=archive)
    th.start()
    with store.write() as w:
        w.insert(tenants, {"id": "bench", "tenant": "bench", "name": "b", "created_at": now_us()})
    interval = 1.0 / rate
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < seconds:
        at = now_us()
        with store.write() as w:
            rec_row = w.insert(sessions, {
                "id": f"{i:064x}", "tenant": "bench", "user_id": "u", "created_at": at,
                "last_seen": at, "expires_at": at + 10**9, "amr": '["pwd"]', "auth_time": at,
            })  # fmt: skip
            lsn_box = w.records[-1].lsn
        committed[lsn_box] = time.time()
        del rec_row
        i += 1
        next_at = start + i * interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    # Let the last writes' segment seal, bounded.
    deadline = time.time() + segment_seconds * 3 + 5
    last = max(committed)
    while time.time() < deadline and not any(lsn >= last for lsn, _ in durable):
        time.sleep(0.05)
    stop.set()
    th.join(10)
    lags = []
    for lsn, t_commit in committed.items():
        t_durable = next((t for last_lsn, t in durable if last_lsn >= lsn), None)
        if t_durable is not None:
            lags.append(t_durable - t_commit)
    lags.sort()
    p50 = statistics.median(lags)
    p99 = lags[int(len(lags) * 0.99) - 1]
    print(
        f"  {'S3   ' if s3 else 'local'} segment_seconds={segment_seconds:<5} "
        f"{len(committed)} writes at {rate:.0f}/s, "
        f"{len(durable)} segments: RPO p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"max {lags[-1] * 1000:.0f} ms ({len(lags)} measured)"
    )
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--skip-postgres", action="store_true")
    ap.add_argument("--rpo-seconds", type=float, default=15.0)
    ap.add_argument("--rpo-rate", type=float, default=200.0)
    ap.add_argument("--only-rpo", action="store_true")
    ap.add_argument("--s3", action="store_true", help="also measure RPO to a real S3 server")
    args = ap.parse_args()
    for tool in ("sqlite3", "zstd", "openssl", "pg_dump"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (apt-get install sqlite3 zstd openssl postgresql)")
    with tempfile.TemporaryDirectory(prefix="standby-bench-backup-") as tmp:
        root = Path(tmp)
        if not args.only_rpo:
            bench_sqlite(root, args.users)
            if not args.skip_postgres:
                bench_postgres(root, args.users)
        print("\n== backup RPO (commit -> its segment durable in the backup store)")
        for seg in (1.0, 0.1):
            bench_rpo(root, args.rpo_seconds, args.rpo_rate, seg)
        if args.s3:
            from tests.support.s3 import S3Server

            server = S3Server().start()
            try:
                for seg in (1.0, 0.1):
                    bench_rpo(root, args.rpo_seconds, args.rpo_rate, seg, server)
            finally:
                server.stop()


if __name__ == "__main__":
    main()
