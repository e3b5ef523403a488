"""The DCS backends against the same contract: the embedded SQLite file and a real etcd."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from standby.cluster.dcs import Dcs, DcsError, make_dcs
from standby.cluster.dcs.embedded import EmbeddedDcs
from standby.cluster.dcs.etcd import EtcdDcs
from standby.cluster.topology import DcsSettings
from tests.support.etcd import EtcdServer


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdServer]:
    server = EtcdServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["embedded", "etcd"])
def dcs_settings(request: pytest.FixtureRequest, tmp_path: Path) -> DcsSettings:
    if request.param == "embedded":
        return DcsSettings(backend="embedded", path=str(tmp_path / "c.db"))
    server: EtcdServer = request.getfixturevalue("etcd")
    return DcsSettings(backend="etcd", endpoints=[server.url], prefix=f"/t/{tmp_path.name}")


def run(settings: DcsSettings, body: Callable[[Dcs], Awaitable[None]]) -> None:
    """Run ``body`` with a backend built inside the test's own event loop."""

    async def go() -> None:
        dcs = make_dcs(settings)
        try:
            await body(dcs)
        finally:
            await dcs.close()

    asyncio.run(go())


def test_leader_key_compare_and_swap(dcs_settings: DcsSettings) -> None:
    async def go(dcs: Dcs) -> None:
        assert await dcs.get_leader() is None
        first = await dcs.put_leader("site-a", 1, expected_revision=0)
        assert first is not None and (first.primary, first.epoch) == ("site-a", 1)
        # A second "create" loses: the key exists now.
        assert await dcs.put_leader("site-b", 1, expected_revision=0) is None
        got = await dcs.get_leader()
        assert got == first
        second = await dcs.put_leader("site-b", 2, expected_revision=first.revision)
        assert second is not None and second.revision != first.revision
        # A writer holding the old revision cannot move it back.
        assert await dcs.put_leader("site-a", 3, expected_revision=first.revision) is None
        now = await dcs.get_leader()
        assert now is not None and (now.primary, now.epoch) == ("site-b", 2)

    run(dcs_settings, go)


def test_concurrent_swaps_one_winner(dcs_settings: DcsSettings) -> None:
    async def go(dcs: Dcs) -> None:
        base = await dcs.put_leader("site-a", 1, expected_revision=0)
        assert base is not None
        results = await asyncio.gather(
            *(dcs.put_leader(f"s{i}", 2, expected_revision=base.revision) for i in range(8))
        )
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        assert await dcs.get_leader() == winners[0]

    run(dcs_settings, go)


def test_lease_lapses_without_renewal(dcs_settings: DcsSettings) -> None:
    async def go(dcs: Dcs) -> None:
        lease = await dcs.lease_grant("site-a", 1.0)
        assert await dcs.lease_renew(lease)
        left = await dcs.lease_remaining(lease)
        assert left is not None and left > 0
        # Renewals keep it alive past its TTL ...
        for _ in range(6):
            await asyncio.sleep(0.4)
            assert await dcs.lease_renew(lease)
        # ... and without them it lapses (etcd rounds TTLs up to its own minimum).
        deadline = asyncio.get_running_loop().time() + 10
        while await dcs.lease_remaining(lease) is not None:
            assert asyncio.get_running_loop().time() < deadline, "lease never lapsed"
            await asyncio.sleep(0.2)
        assert not await dcs.lease_renew(lease)

    run(dcs_settings, go)


def test_lease_revoke(dcs_settings: DcsSettings) -> None:
    async def go(dcs: Dcs) -> None:
        lease = await dcs.lease_grant("site-a", 5.0)
        await dcs.lease_revoke(lease)
        assert await dcs.lease_remaining(lease) is None
        assert not await dcs.lease_renew(lease)

    run(dcs_settings, go)


def test_embedded_leader_survives_restart(tmp_path: Path) -> None:
    async def go() -> None:
        one = EmbeddedDcs(tmp_path / "c.db")
        put = await one.put_leader("site-b", 4, expected_revision=0)
        lease = await one.lease_grant("site-b", 5.0)
        await one.close()
        two = EmbeddedDcs(tmp_path / "c.db")
        assert await two.get_leader() == put
        # Leases live on the granting process's clock: a restart holds none.
        assert await two.lease_remaining(lease) is None
        await two.close()

    asyncio.run(go())


def test_unreachable_etcd_is_a_clear_error() -> None:
    from tests.support.postgres import free_port

    async def go() -> None:
        dcs = EtcdDcs([f"http://127.0.0.1:{free_port()}"], timeout=0.5)
        with pytest.raises(DcsError, match="etcd unreachable"):
            await dcs.get_leader()
        await dcs.close()

    asyncio.run(go())
