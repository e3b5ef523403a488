"""Pure replication decisions: framing, transaction alignment, epochs, lag, sync outcomes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from standby.replication import epochs
from standby.replication.framing import (
    Heartbeat,
    StreamError,
    complete_prefix,
    decode,
    encode,
    whole_transactions,
)
from standby.replication.lag import primary_view, standby_view
from standby.replication.quarantine import summarize
from standby.replication.rejoin import plan
from standby.replication.sync import after_wait
from standby.store.records import GENESIS_HASH, Record, chain_hash


def _chain(txn_sizes: list[int]) -> list[Record]:
    recs: list[Record] = []
    prev, lsn = GENESIS_HASH, 0
    for size in txn_sizes:
        txn = lsn + 1
        for _ in range(size):
            lsn += 1
            payload = json.dumps({"id": f"k{lsn}", "tenant": "t1"})
            args = (lsn, 1, "a", 1000 + lsn, txn, "t1", "users", f"k{lsn}", "insert", payload)
            h = chain_hash(prev, *args)
            recs.append(Record(*args, prev_hash=prev, hash=h))
            prev = h
    return recs


@given(st.lists(st.integers(1, 5), min_size=1, max_size=12), st.integers(1, 40))
@settings(max_examples=200)
def test_a_cut_batch_never_ends_inside_a_transaction(sizes: list[int], limit: int) -> None:
    recs = _chain(sizes)
    batch = recs[:limit]
    full = len(batch) == limit
    ready = complete_prefix(batch, full)
    assert ready == batch[: len(ready)]
    if ready and full:
        # the next record after the prefix starts a new transaction
        nxt = recs[len(ready)]
        assert nxt.txn == nxt.lsn
    if not full:
        assert ready == batch


def test_whole_transactions_holds_back_the_open_one() -> None:
    recs = _chain([2, 3])
    done, open_ = whole_transactions(recs[:4])
    assert [r.lsn for r in done] == [1, 2] and [r.lsn for r in open_] == [3, 4]


def test_decode_round_trips_and_rejects_garbage() -> None:
    rec = _chain([1])[0]
    assert decode(encode(rec).decode()) == rec
    beat = Heartbeat(5, 6, 1, 7, 5, 0)
    assert decode(encode(beat).decode()) == beat
    for bad in ("nonsense", "[1,2]", '{"lsn": 1}', '{"heartbeat": true}'):
        with pytest.raises(StreamError):
            decode(bad)
    tampered = json.loads(rec.to_json())
    tampered["payload"] = json.dumps({"id": "k1", "tenant": "evil"})
    with pytest.raises(StreamError, match="hash"):
        decode(json.dumps(tampered))


def test_divergence_point_is_the_start_of_the_first_unknown_epoch() -> None:
    history = [
        {"epoch": 1, "start_lsn": 1},
        {"epoch": 2, "start_lsn": 50},
        {"epoch": 3, "start_lsn": 80},
    ]
    assert epochs.divergence_lsn(1, history) == 50
    assert epochs.divergence_lsn(2, history) == 80
    assert epochs.divergence_lsn(3, history) is None
    assert epochs.compare(2, 3) == "caller_higher"
    assert epochs.compare(2, 1) == "caller_lower"
    assert epochs.newest_epoch(history) == 3


def test_lag_views() -> None:
    assert primary_view(10, 10, 0, None, 5_000_000).records == 0
    lag = primary_view(12, 10, 400, 3_000_000, 5_000_000)
    assert (lag.records, lag.bytes, lag.seconds) == (2, 400, 2.0)
    s = standby_view(20, 15, 9_000_000, 4_000_000, 100, True, 0.0)
    assert (s.records, s.seconds) == (5, 5.0)
    # a silent primary: at least the silence is reported
    assert standby_view(20, 20, 0, 0, 0, False, 3.5).seconds == 3.5


@pytest.mark.parametrize(
    ("confirmed", "strict", "degraded", "outcome"),
    [
        (True, False, False, "confirmed"),
        (False, False, False, "degrade"),
        (False, True, False, "refuse"),
        (False, False, True, "skip"),
    ],
)
def test_sync_outcome(confirmed: bool, strict: bool, degraded: bool, outcome: str) -> None:
    assert after_wait(confirmed, strict, degraded) == outcome


def test_rewind_plan_and_report() -> None:
    recs = _chain([1, 2, 1])
    prior = {("users", "k1"): recs[0]}
    diverged = [*recs[1:], recs[0]]
    actions = plan(diverged, prior)
    assert [(a.key, a.prior) for a in actions] == [
        ("k2", None),
        ("k3", None),
        ("k4", None),
        ("k1", recs[0]),
    ]
    report = summarize(recs)
    assert report["records"] == 4 and report["by_entity"]["users"]["ops"] == {"insert": 4}
