"""Retention as a pure function, checked by properties over random archives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from standby.backup.retention import SegmentInfo, SetInfo, decide

DAY = 86400.0
NOW = 100 * DAY


@st.composite
def archives(draw: st.DrawFn) -> tuple[list[SetInfo], list[SegmentInfo]]:
    n = draw(st.integers(0, 12))
    lsns = sorted(draw(st.lists(st.integers(0, 500), min_size=n, max_size=n)))
    ages = sorted(draw(st.lists(st.floats(0, 60 * DAY), min_size=n, max_size=n)), reverse=True)
    sets = [
        SetInfo(f"s{i:02d}", NOW - ages[i], lsns[i], draw(st.sampled_from([None, True, False])))
        for i in range(n)
    ]
    cuts = sorted(set(draw(st.lists(st.integers(1, 600), max_size=20))))
    segs, first = [], 1
    for c in cuts:
        if c >= first:
            segs.append(SegmentInfo(f"g{first}-{c}", first, c))
            first = c + 1
    return sets, segs


policy = st.tuples(st.integers(1, 6), st.one_of(st.none(), st.floats(0.5, 40)))


@settings(max_examples=150, deadline=None)
@given(archives(), policy)
def test_retention_properties(
    archive: tuple[list[SetInfo], list[SegmentInfo]], pol: tuple[int, float | None]
) -> None:
    sets, segs = archive
    keep_count, keep_days = pol
    d = decide(sets, segs, now=NOW, keep_count=keep_count, keep_days=keep_days)
    ids = {s.id for s in sets}
    # A partition of what exists.
    assert set(d.keep_sets) | set(d.delete_sets) == ids
    assert not set(d.keep_sets) & set(d.delete_sets)
    assert set(d.delete_segments) <= {g.name for g in segs}
    if not sets:
        assert not d.delete_segments
        return
    kept = [s for s in sets if s.id in d.keep_sets]
    newest = max(sets, key=lambda s: (s.lsn, s.created_at, s.id))
    # The newest restorable chain: its set and every segment after it stay.
    assert newest.id in d.keep_sets
    # Every kept set keeps every segment that can extend it.
    for s in kept:
        for g in segs:
            if g.last_lsn > s.lsn:
                assert g.name not in d.delete_segments
    assert len(kept) >= min(keep_count, len(sets))
    if keep_days is not None:
        for s in sets:
            if s.created_at >= NOW - keep_days * DAY:
                assert s.id in d.keep_sets
        # Something restores to the window's start, if anything that old exists.
        if any(s.created_at < NOW - keep_days * DAY for s in sets):
            assert any(s.created_at < NOW - keep_days * DAY for s in kept)
    verified = [s for s in sets if s.verified_ok]
    if verified:
        best = max(verified, key=lambda s: (s.lsn, s.created_at, s.id))
        assert best.id in d.keep_sets
    # Idempotent: deciding again over what is left deletes nothing more.
    left_segs = [g for g in segs if g.name not in d.delete_segments]
    again = decide(kept, left_segs, now=NOW, keep_count=keep_count, keep_days=keep_days)
    assert not again.delete_sets and not again.delete_segments


def test_keeps_by_count_and_deletes_older_segments() -> None:
    sets = [SetInfo(f"s{i}", NOW - (10 - i) * DAY, i * 100) for i in range(10)]
    segs = [SegmentInfo(f"g{i}", i * 100 + 1, (i + 1) * 100) for i in range(10)]
    d = decide(sets, segs, now=NOW, keep_count=3)
    assert d.keep_sets == ["s9", "s8", "s7"]
    assert d.delete_segments == sorted(f"g{i}" for i in range(7))
