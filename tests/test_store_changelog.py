"""The change-logged write path, the log read API and chain verification, on both databases."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select, text

from standby.store import ApplyError, Conflict, NotWritable, Store
from standby.store.schema import REPLICATED_TABLES, change_log
from standby.store.verify import verify_store


def _tenant(store: Store, tid: str = "t1") -> None:
    with store.write() as w:
        w.insert("tenants", {"id": tid, "tenant": tid, "name": tid, "created_at": 1})


def _user(store: Store, uid: str, name: str, tenant: str = "t1") -> None:
    with store.write() as w:
        w.insert(
            "users",
            {"id": uid, "tenant": tenant, "username": name, "created_at": 1, "updated_at": 1},
        )


def test_every_write_appends_one_record_in_the_same_transaction(store: Store) -> None:
    _tenant(store)
    _user(store, "u1", "alice")
    with store.write() as w:
        w.update("users", "u1", {"email": "a@example.test"})
        w.delete("users", "u1")
    recs = store.records_after(0)
    assert [(r.lsn, r.entity, r.op) for r in recs] == [
        (1, "tenants", "insert"),
        (2, "users", "insert"),
        (3, "users", "update"),
        (4, "users", "delete"),
    ]
    assert recs[2].txn == recs[3].txn == 3
    assert recs[2].row()["email"] == "a@example.test"  # full row image
    assert recs[3].payload is None and recs[3].tenant == "t1"
    assert verify_store(store).ok


def test_failed_transaction_leaves_neither_row_nor_record(store: Store) -> None:
    _tenant(store)
    with pytest.raises(RuntimeError), store.write() as w:
        w.insert(
            "users", {"id": "u1", "tenant": "t1", "username": "x", "created_at": 1, "updated_at": 1}
        )
        raise RuntimeError("boom")
    assert store.head().lsn == 1
    with store.read() as c:
        assert c.execute(select(REPLICATED_TABLES["users"])).first() is None


def test_duplicate_username_is_a_conflict_and_writes_nothing(store: Store) -> None:
    _tenant(store)
    _user(store, "u1", "alice")
    with pytest.raises(Conflict):
        _user(store, "u2", "alice")
    assert store.head().lsn == 2
    assert verify_store(store).ok


def test_standby_refuses_writes(store_url: str) -> None:
    s = Store(store_url, "b")
    s.create(role="standby")
    with pytest.raises(NotWritable, match="standby"), s.write():
        pass
    s.close()


@pytest.mark.parametrize("tamper", ["edit", "remove", "reorder"])
def test_verify_log_names_first_bad_lsn(store: Store, tamper: str) -> None:
    _tenant(store)
    for i in range(5):
        _user(store, f"u{i}", f"user{i}")
    assert verify_store(store).ok
    with store.engine.begin() as c:
        if tamper == "edit":
            c.execute(
                text(
                    "UPDATE change_log SET payload = replace(payload, 'user2', 'mallory') "
                    "WHERE lsn = 4"
                )
            )
        elif tamper == "remove":
            c.execute(text("DELETE FROM change_log WHERE lsn = 4"))
        else:  # swap the contents of records 3 and 4, keeping their LSNs
            rows = {
                r.lsn: dict(r._mapping)
                for r in c.execute(select(change_log).where(change_log.c.lsn.in_([3, 4])))
            }
            for lsn, other in ((3, 4), (4, 3)):
                vals = {k: v for k, v in rows[other].items() if k != "lsn"}
                c.execute(change_log.update().where(change_log.c.lsn == lsn).values(**vals))
    report = verify_store(store)
    assert not report.ok
    assert report.first_bad_lsn == (3 if tamper == "reorder" else 4)


def test_read_api_filters_by_tenant_lsn_and_time(store: Store) -> None:
    _tenant(store, "t1")
    _tenant(store, "t2")
    _user(store, "a", "a", "t1")
    _user(store, "b", "b", "t2")
    assert [r.key for r in store.records_after(0, tenants=["t2"])] == ["t2", "b"]
    assert [r.lsn for r in store.records_after(1, until_lsn=3)] == [2, 3]
    cut = store.records_after(0)[1].committed_at
    assert all(r.committed_at <= cut for r in store.records_after(0, until_time=cut))


def test_apply_is_idempotent_and_checks_the_chain(store: Store, tmp_path: Path) -> None:
    _tenant(store)
    _user(store, "u1", "alice")
    recs = store.records_after(0)
    # records from either database apply to a SQLite replica (PostgreSQL replicas are
    # covered by the replication tests)
    replica = Store(f"sqlite:///{tmp_path / 'replica.db'}", "b")
    replica.create(role="standby")
    replica.apply(recs)
    replica.apply(recs)  # twice: nothing changes
    assert replica.head().lsn == 2 and verify_store(replica).ok
    _user(store, "u2", "bob")
    _user(store, "u3", "carol")
    later = store.records_after(2)
    with pytest.raises(ApplyError, match="does not follow"):
        replica.apply(later[1:])  # gap: record 3 missing
    assert replica.head().lsn == 2
    replica.close()


def test_concurrent_writers_commit_in_log_order(store: Store) -> None:
    """Many threads writing at once: LSNs gap-free, chain intact, commit order = log order."""
    _tenant(store)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(15):
                with store.write() as w:
                    w.insert(
                        "users",
                        {
                            "id": f"u{n}-{i}",
                            "tenant": "t1",
                            "username": f"u{n}-{i}",
                            "created_at": 1,
                            "updated_at": 1,
                        },
                    )
                    w.insert(
                        "audit_events",
                        {
                            "id": f"e{n}-{i}",
                            "tenant": "t1",
                            "at": 1,
                            "actor": "t",
                            "action": "x",
                            "outcome": "ok",
                        },
                    )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    recs = store.records_after(0, limit=10_000)
    assert [r.lsn for r in recs] == list(range(1, 1 + 1 + 8 * 15 * 2))
    assert verify_store(store).ok
    # commit times never go backwards along the log
    assert all(a.committed_at <= b.committed_at for a, b in zip(recs, recs[1:], strict=False))


def test_replaying_the_log_rebuilds_every_table(store: Store, tmp_path) -> None:
    """No write bypasses the log: replay into an empty store equals the source row for row."""
    _tenant(store)
    for i in range(10):
        _user(store, f"u{i}", f"n{i}")
    with store.write() as w:
        w.update("users", "u3", {"disabled": True})
        w.delete("users", "u4")
    replica = Store(f"sqlite:///{tmp_path / 'replay.db'}", "r")
    replica.create(role="standby")
    replica.apply(store.iter_records(0))
    for name, table in REPLICATED_TABLES.items():
        with store.read() as a, replica.read() as b:
            rows_a = sorted(map(tuple, a.execute(select(table)).all()), key=str)
            rows_b = sorted(map(tuple, b.execute(select(table)).all()), key=str)
        assert rows_a == rows_b, name
    replica.close()
