"""Rewind on SQLite and PostgreSQL: after quarantining what diverged, the old primary's
rows equal a replica that stopped at the fork, and every diverged record is kept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from standby.replication import quarantine
from standby.replication.rejoin import RejoinError, rewind
from standby.store import Store
from standby.store.schema import REPLICATED_TABLES, change_log


def _rows(store: Store) -> dict[str, list[Any]]:
    with store.read() as conn:
        return {
            name: [tuple(r) for r in conn.execute(select(t).order_by(t.c.id))]
            for name, t in REPLICATED_TABLES.items()
        }


def _step(store: Store, kind: str, pick: int, n: int) -> None:
    """One transaction: a user insert/update/delete, or a username swap (unique column)."""
    with store.write() as w:
        with store.read() as conn:
            ids = [r[0] for r in conn.execute(select(REPLICATED_TABLES["users"].c.id))]
        if kind == "insert" or not ids:
            w.insert(
                "users",
                {
                    "id": f"u{n}",
                    "tenant": "t1",
                    "username": f"name{n}",
                    "created_at": n,
                    "updated_at": n,
                },
            )
            return
        uid = ids[pick % len(ids)]
        if kind == "update":
            w.update("users", uid, {"email": f"{n}@x", "updated_at": n})
        elif kind == "delete":
            w.delete("users", uid)
        else:  # free a username, then reuse it on another row in the same transaction
            other = ids[(pick + 1) % len(ids)]
            old = w.get("users", uid)
            assert old is not None
            w.update("users", uid, {"username": f"moved{n}"})
            if other != uid:
                w.update("users", other, {"username": old["username"]})


ops = st.lists(
    st.tuples(st.sampled_from(["insert", "update", "delete", "swap"]), st.integers(0, 20)),
    min_size=1,
    max_size=12,
)


@pytest.fixture
def stores(store_url_pair: list[str]) -> Iterator[tuple[Store, Store]]:
    a, b = Store(store_url_pair[0], "site-a"), Store(store_url_pair[1], "site-b")
    a.create()
    b.create(role="standby")
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def test_rewind_restores_the_fork_state_and_quarantines_the_rest(
    stores: tuple[Store, Store],
) -> None:
    a, b = stores
    counter = iter(range(1, 10**6))

    @settings(
        max_examples=8,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(shared=ops, diverged=ops)
    def run(shared: list[tuple[str, int]], diverged: list[tuple[str, int]]) -> None:
        # a replica following site-a, up to the fork
        for kind, pick in shared:
            _step(a, kind, pick, next(counter))
        b.apply(a.records_after(b.head().lsn, limit=100_000))
        fork = a.head().lsn + 1
        for kind, pick in diverged:
            _step(a, kind, pick, next(counter))
        lost = a.records_after(fork - 1, limit=100_000)
        before = len(quarantine.entries(a))
        timeline = [{"epoch": 2, "start_lsn": fork, "site": "site-b", "created_at": 1}]
        report = rewind(a, fork, timeline, 2, "http://127.0.0.1:1")
        assert _rows(a) == _rows(b)
        assert a.head().lsn == fork - 1 and a.head().hash == b.head().hash
        kept = quarantine.entries(a)[before:]
        assert [e["record"] for e in kept] == [r.to_dict() for r in lost]
        assert report["records"] == len(lost)
        # back to a primary on the same timeline for the next example
        a.set_meta("role", "primary")
        a.set_meta("epoch", "1")

    run()


def test_rewind_refuses_when_the_log_was_trimmed_past_what_it_needs(
    stores: tuple[Store, Store],
) -> None:
    a, _ = stores
    _step(a, "insert", 0, 1)
    _step(a, "insert", 0, 2)
    fork = a.head().lsn + 1
    with a.write() as w:  # changes u1, whose insert (lsn 1) we now trim away
        w.update("users", "u1", {"email": "late@x"})
    with a.engine.begin() as conn:
        conn.execute(change_log.delete().where(change_log.c.lsn == 1))
    before = _rows(a)
    timeline = [{"epoch": 2, "start_lsn": fork, "site": "site-b", "created_at": 1}]
    with pytest.raises(RejoinError, match="older than this site's log"):
        rewind(a, fork, timeline, 2, "http://127.0.0.1:1")
    assert _rows(a) == before and quarantine.entries(a) == []
    assert a.role == "primary"
