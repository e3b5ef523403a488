"""Streaming replication between real site processes, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.replication import (
    WorkloadSite,
    caught_up,
    secret_of,
    snapshot,
    status,
    tenant_op,
    user_op,
    wait_for,
    write,
    write_pair,
)
from tests.support.sites import SiteProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def pair(
    tmp_path: Path, store_url_pair: list[str]
) -> Iterator[tuple[WorkloadSite, SiteProcess, str]]:
    pc, sc = write_pair(tmp_path, store_url_pair)
    primary = WorkloadSite(pc).start()
    standby = SiteProcess(sc)
    try:
        standby.start()
        yield primary, standby, secret_of(pc)
    finally:
        standby.stop()
        primary.stop()


# One step of a random workload: (kind, a number picking the row).
steps = st.lists(
    st.tuples(
        st.sampled_from(["user", "email", "delete", "session", "revoke"]), st.integers(0, 30)
    ),
    min_size=1,
    max_size=25,
)


class Model:
    """Which rows exist, so random steps turn into valid writes."""

    def __init__(self) -> None:
        self.users: list[str] = []
        self.sessions: list[str] = []
        self.n = 0

    def ops(self, kind: str, pick: int) -> list[dict[str, Any]]:
        self.n += 1
        if kind == "user" or not self.users:
            uid = f"u{self.n}"
            self.users.append(uid)
            return [user_op(uid, tenant="t1" if pick % 2 else "t2", email=f"{uid}@x.test")]
        uid = self.users[pick % len(self.users)]
        if kind == "email":
            return [{"op": "update", "entity": "users", "key": uid, "changes": {"email": "e"}}]
        if kind == "delete":
            self.users.remove(uid)
            return [{"op": "delete", "entity": "users", "key": uid}]
        if kind == "session" or not self.sessions:
            sid = f"s{self.n}"
            self.sessions.append(sid)
            row = {
                "id": sid,
                "tenant": "t1",
                "user_id": uid,
                "created_at": 1,
                "last_seen": 1,
                "expires_at": 10**15,
                "auth_time": 1,
            }
            return [
                {"op": "insert", "entity": "sessions", "row": row},
                {"op": "update", "entity": "users", "key": uid, "changes": {"updated_at": 2}},
            ]
        sid = self.sessions[pick % len(self.sessions)]
        return [{"op": "update", "entity": "sessions", "key": sid, "changes": {"revoked_at": 5}}]


def test_standby_equals_primary_row_for_row_after_a_random_workload(
    pair: tuple[WorkloadSite, SiteProcess, str], store_url_pair: list[str]
) -> None:
    primary, standby, secret = pair
    assert write(primary.url, [tenant_op("t1"), tenant_op("t2")]).status_code == 200
    model = Model()

    @settings(
        max_examples=4,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(steps)
    def run(workload: list[tuple[str, int]]) -> None:
        last = 0
        for kind, pick in workload:
            resp = write(primary.url, model.ops(kind, pick))
            assert resp.status_code == 200, resp.text
            last = resp.json()["lsn"]
        wait_for(lambda: caught_up(standby.url, secret, last))
        assert snapshot(store_url_pair[1], "site-b") == snapshot(store_url_pair[0], "site-a")

    run()
    st_b = status(standby.url, secret)
    st_a = status(primary.url, secret)
    assert st_b["role"] == "standby" and st_b["lag"]["records"] == 0
    assert st_a["standbys"]["site-b"]["acked_lsn"] == st_a["head_lsn"]
    metrics = httpx.get(f"{standby.url}/metrics").text
    assert 'standby_replication_lag_records{peer="primary",side="standby"} 0.0' in metrics


def test_selective_standby_gets_only_its_tenants_and_resumes_after_restart(
    tmp_path: Path, store_url_pair: list[str]
) -> None:
    pc, sc = write_pair(tmp_path, store_url_pair, standby_replication={"tenants": ["t1"]})
    primary = WorkloadSite(pc).start()
    standby = SiteProcess(sc)
    secret = secret_of(pc)
    try:
        standby.start()
        assert write(primary.url, [tenant_op("t1"), tenant_op("t2")]).status_code == 200
        for i in range(6):
            ops = [user_op(f"a{i}", tenant="t1"), user_op(f"b{i}", tenant="t2")]
            last = write(primary.url, ops).json()["lsn"]
        wait_for(lambda: caught_up(standby.url, secret, last))
        want = snapshot(store_url_pair[0], "site-a", tenants=["t1"])
        assert snapshot(store_url_pair[1], "site-b") == want
        assert len(want["users"]) == 6
        standby.stop()
        for i in range(6, 9):
            last = write(primary.url, [user_op(f"b{i}", tenant="t2")]).json()["lsn"]
        last = write(primary.url, [user_op("a9", tenant="t1")]).json()["lsn"]
        standby.start()
        wait_for(lambda: caught_up(standby.url, secret, last))
        assert snapshot(store_url_pair[1], "site-b") == snapshot(
            store_url_pair[0], "site-a", tenants=["t1"]
        )
        assert status(standby.url, secret)["lag"]["records"] == 0
    finally:
        standby.stop()
        primary.stop()
