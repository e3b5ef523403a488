"""Verified restores: restore a set into a scratch store and prove it usable — decryption
and checksums, row counts against the manifest, the hash chain, schema invariants, the
segments after it, and a real password login of the canary user. Results are recorded
in the backup store's catalog."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select

from standby.backup import target as target_store
from standby.backup.canary import CANARY_TENANT, CANARY_USER, canary_password
from standby.backup.context import Backups
from standby.backup.errors import BackupError
from standby.backup.load import Progress, load
from standby.backup.plan import Target, plan
from standby.store import Store
from standby.store.schema import REPLICATED_TABLES, change_log, tenants
from standby.store.verify import verify_store

log = logging.getLogger("standby.backup")


class _Checks:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.items[name] = {"ok": ok, "detail": detail}
        return ok


def verify_set(
    backups: Backups, set_id: str | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Verify one set (default: the newest); record and return the result."""
    started = time.time()
    checks = _Checks()
    p = plan(backups.catalog.sets(strict=False), backups.catalog.segments(), Target(), set_id)
    result: dict[str, Any] = {"set_id": p.set["id"], "at": started, "ok": False}
    with tempfile.TemporaryDirectory(prefix="standby-verify-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'scratch.db'}"
        try:
            loaded = load(backups, p, Target(), progress=progress)
            checks.add(
                "decrypt_checksums",
                True,
                f"snapshot and {len(p.segments)} segments decrypted, SHA-256 match",
            )
            _run_checks(backups, p.set, loaded, url, checks)
            result["reached_lsn"] = loaded.lsn
        except BackupError as exc:
            checks.add("decrypt_checksums", False, str(exc))
    result["checks"] = checks.items
    result["ok"] = bool(checks.items) and all(c["ok"] for c in checks.items.values())
    result["seconds"] = round(time.time() - started, 3)
    backups.catalog.record_verification(result)
    log.info(json.dumps({"event": "backup_verified", "set": result["set_id"], "ok": result["ok"]}))
    return result


def _run_checks(
    backups: Backups, manifest: dict[str, Any], loaded: Any, url: str, checks: _Checks
) -> None:
    want = {k: int(v) for k, v in manifest.get("row_counts", {}).items()}
    got = loaded.snapshot.counts()
    checks.add(
        "row_counts_snapshot",
        all(got.get(k, 0) == v for k, v in want.items()),
        f"{sum(want.values())} rows in {len(want)} tables as the manifest lists",
    )
    target_store.write(url, replace(loaded, records=[]), site=backups.settings.site)
    store = Store(url, backups.settings.site)
    try:
        with store.read() as conn:
            restored = {
                name: int(conn.execute(select(func.count()).select_from(t)).scalar() or 0)
                for name, t in REPLICATED_TABLES.items()
            }
        bad = {k: (restored[k], want.get(k, 0)) for k in restored if restored[k] != want.get(k, 0)}
        checks.add(
            "row_counts_restored",
            not bad,
            "restored tables match the manifest" if not bad else f"differ (got, want): {bad}",
        )
        try:
            for i in range(0, len(loaded.records), 5000):
                store.apply(loaded.records[i : i + 5000])
            checks.add(
                "segments_replay",
                store.head().lsn == loaded.lsn,
                f"{len(loaded.records)} records replayed to lsn {store.head().lsn}",
            )
        except Exception as exc:  # noqa: BLE001 - any failure to replay is the finding
            checks.add("segments_replay", False, f"replay failed: {exc}")
        chain = verify_store(store)
        checks.add(
            "hash_chain",
            chain.ok,
            f"{chain.checked} records chained" if chain.ok else str(chain.problem),
        )
        _invariants(store, checks)
        _log_matches_rows(store, checks)
        _canary(backups, store, manifest, checks)
    finally:
        store.close()


def _invariants(store: Store, checks: _Checks) -> None:
    with store.read() as conn:
        known = {r[0] for r in conn.execute(select(tenants.c.id))}
        orphans: dict[str, int] = {}
        for name, t in REPLICATED_TABLES.items():
            if name == "tenants":
                continue
            used = {r[0] for r in conn.execute(select(t.c.tenant).distinct())}
            missing = {u for u in used if u is not None and u not in known}
            if missing:
                orphans[name] = len(missing)
        self_ok = all(
            r.id == r.tenant for r in conn.execute(select(tenants.c.id, tenants.c.tenant))
        )
    checks.add(
        "invariants",
        not orphans and self_ok,
        "every row belongs to an existing tenant"
        if not orphans and self_ok
        else f"rows of unknown tenants: {orphans}",
    )


def _log_matches_rows(store: Store, checks: _Checks) -> None:
    """Every row is what the last change-log record for its key says (and a deleted key
    has no row); with the log complete from genesis, no row exists outside it."""
    last: dict[tuple[str, str], str | None] = {}
    with store.read() as conn:
        q = select(change_log.c.entity, change_log.c.key, change_log.c.payload).order_by(
            change_log.c.lsn
        )
        for entity, key, payload in conn.execute(q.execution_options(yield_per=10000)):
            last[(entity, key)] = payload
        complete = store.get_meta("checkpoint") is None
        bad: list[str] = []
        for name, t in REPLICATED_TABLES.items():
            seen = set()
            for row in conn.execute(select(t)).mappings():
                seen.add(row["id"])
                if (name, row["id"]) not in last:
                    if complete:
                        bad.append(f"{name} {row['id']}: row not in the change log")
                    continue
                payload = last[(name, row["id"])]
                if payload is None:
                    bad.append(f"{name} {row['id']}: row exists but its last record deletes it")
                    continue
                image = orjson.loads(payload)
                diff = [c for c in image if c in row and row[c] != image[c]]
                if diff:
                    bad.append(f"{name} {row['id']}: {diff} differ from the change log")
            for (entity, key), payload in last.items():
                if entity == name and payload is not None and key not in seen:
                    bad.append(f"{name} {key}: in the change log but missing")
    checks.add(
        "log_matches_rows",
        not bad,
        f"every row matches its last change-log record ({len(last)} keys)"
        if not bad
        else f"{len(bad)} mismatches, e.g. {bad[:3]}",
    )


def _canary(backups: Backups, store: Store, manifest: dict[str, Any], checks: _Checks) -> None:
    if not manifest.get("canary"):
        checks.add("canary_login", True, "skipped: the set was taken without a canary user")
        return
    from standby.errors import ApiError
    from standby.identity.authn import authenticate
    from standby.identity.passwords import passwords_for
    from standby.identity.users import find_user_row
    from standby.server import Site

    site = Site(backups.settings, backups.secrets, store)
    row = find_user_row(site, CANARY_TENANT, CANARY_USER)
    if row is None:
        checks.add("canary_login", False, "the canary user is missing from the restored data")
        return
    pw = passwords_for(site)
    # The canary was created under whichever backup key was current then.
    password = next(
        (
            canary_password(k)
            for k in backups.keyring.all()
            if pw.verify(row["password_hash"], canary_password(k))
        ),
        canary_password(backups.keyring.current),
    )
    try:
        result = authenticate(site, CANARY_TENANT, CANARY_USER, password, remote="backup-verify")
        checks.add("canary_login", True, f"password login as canary ok (amr {result.amr})")
    except ApiError as exc:
        checks.add("canary_login", False, f"canary login failed: {exc.error}: {exc.message}")


VerifyFn = Callable[[Backups], dict[str, Any]]
