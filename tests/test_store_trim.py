"""Change-log retention: the pure trim decision, Store.trim, and the primary's trim job."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from standby.logtrim import trim_once
from standby.replication.state import state_of
from standby.server import Site, create_app
from standby.store import Store
from standby.store.trim import trim_point
from standby.store.verify import verify_store
from tests.support.sites import load_site, make_site_dir


@given(
    head=st.integers(0, 10_000),
    standbys=st.lists(st.integers(0, 10_000), max_size=4),
    archived=st.one_of(st.none(), st.integers(0, 10_000)),
    keep=st.integers(0, 1_000),
)
def test_trim_point_never_passes_a_holder_or_the_kept_tail(
    head: int, standbys: list[int], archived: int | None, keep: int
) -> None:
    upto = trim_point(head, standbys, archived, keep)
    assert upto >= 0
    holders = standbys + ([] if archived is None else [archived])
    if not holders:
        assert upto == 0  # nobody else holds the records: keep them all
    else:
        assert all(upto <= h for h in holders)
        assert upto <= max(0, head - keep)


def _users(store: Store, n: int, start: int = 0) -> None:
    with store.write() as w:
        if start == 0:
            w.insert("tenants", {"id": "t", "tenant": "t", "name": "t", "created_at": 1})
    for i in range(start, start + n):
        with store.write() as w:
            w.insert(
                "users",
                {
                    "id": f"u{i}",
                    "tenant": "t",
                    "username": f"u{i}",
                    "created_at": 1,
                    "updated_at": 1,
                },
            )


def test_trim_leaves_a_checkpoint_the_chain_verifies_from(store: Store) -> None:
    _users(store, 6)
    head = store.head()
    assert store.trim(4) == 4
    assert store.oldest_lsn() == 5
    assert store.head() == head
    assert verify_store(store).ok
    assert store.trim(3) == 0  # already gone: nothing happens
    _users(store, 2, start=6)  # the chain continues past the trim
    report = verify_store(store)
    assert report.ok and report.first_lsn == 5 and report.last_lsn == head.lsn + 2
    assert store.trim(store.head().lsn) == store.head().lsn - 4  # all, up to the head
    assert store.head().lsn == head.lsn + 2  # the head survives as the checkpoint
    _users(store, 1, start=8)
    assert verify_store(store).ok


def _site(tmp_path: Path, store_url: str, **store: object) -> Site:
    cfg = make_site_dir(
        tmp_path, "a", store_url=store_url, extra={"store": store, "backup": {"archive": False}}
    )
    settings, secrets = load_site(cfg)
    s = Store(settings.store.url, settings.site)
    s.create()
    site = Site(settings, secrets, s)
    create_app(site)  # mounts every part (metrics, replication state); nothing is served
    return site


def test_primary_trims_only_what_every_registered_standby_applied(
    tmp_path: Path, store_url: str
) -> None:
    site = _site(tmp_path, store_url, keep_records=2)
    _users(site.store, 10)  # lsn 1..11
    first = trim_once(site)
    assert first is not None and first.removed == 0  # no standby, no archive: keep all
    state_of(site).peer("b").lsn = 7
    state_of(site).peer("c").lsn = 9
    out = trim_once(site)
    assert out is not None and out.upto == 7 and out.removed == 7
    assert verify_store(site.store).ok
    # the registry is persisted: a restarted primary (no peers in memory) still waits for b
    site.parts.clear()
    out = trim_once(site)
    assert out is not None and out.removed == 0
    state_of(site).peer("b").lsn = 11
    out = trim_once(site)
    assert out is not None and out.upto == 9  # b is at 11, head - keep = 9, c is at 9
    site.store.close()


def test_a_lagging_standby_raises_the_alert_and_loses_nothing(
    tmp_path: Path, store_url: str
) -> None:
    site = _site(tmp_path, store_url, keep_records=0, alert_records=5)
    _users(site.store, 8)
    state_of(site).peer("b").lsn = 1
    out = trim_once(site)
    assert out is not None and out.upto == 1 and out.over_alert
    assert site.store.oldest_lsn() == 2  # everything b still needs is there
    assert b"standby_changelog_retention_alert 1.0" in site.metrics.render()
    site.store.close()


def test_a_standby_never_trims(tmp_path: Path, store_url: str) -> None:
    site = _site(tmp_path, store_url)
    site.role = "standby"
    assert trim_once(site) is None
    site.store.close()


@pytest.mark.parametrize("keep", [0, 3])
def test_trim_point_examples(keep: int) -> None:
    assert trim_point(10, [6, 8], 7, keep) == min(6, 10 - keep)
