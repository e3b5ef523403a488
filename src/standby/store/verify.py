"""Checking the change log's hash chain: finds the first edited, removed or reordered record."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from standby.store.records import GENESIS_HASH, Record
from standby.store.store import Store


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_lsn: int | None
    last_lsn: int | None
    first_bad_lsn: int | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_lsn": self.first_lsn,
            "last_lsn": self.last_lsn,
            "first_bad_lsn": self.first_bad_lsn,
            "problem": self.problem,
        }


def check_chain(
    records: Iterable[Record], start_lsn: int = 0, start_hash: str = GENESIS_HASH
) -> ChainReport:
    """Walk records in LSN order from a known (lsn, hash) and report the first break."""
    prev_lsn, prev_hash = start_lsn, start_hash
    first: int | None = None
    checked = 0
    for rec in records:
        first = rec.lsn if first is None else first
        if rec.lsn != prev_lsn + 1:
            problem = (
                f"record {prev_lsn + 1} is missing (next present is {rec.lsn})"
                if rec.lsn > prev_lsn + 1
                else f"record {rec.lsn} is out of order after {prev_lsn}"
            )
            return ChainReport(False, checked, first, prev_lsn, min(rec.lsn, prev_lsn + 1), problem)
        if rec.prev_hash != prev_hash:
            return ChainReport(
                False,
                checked,
                first,
                prev_lsn,
                rec.lsn,
                f"record {rec.lsn} does not link to record {prev_lsn} (prev_hash differs): "
                "a record was edited, removed or reordered",
            )
        if rec.hash != rec.expected_hash():
            return ChainReport(
                False,
                checked,
                first,
                prev_lsn,
                rec.lsn,
                f"record {rec.lsn} was altered: its hash does not match its contents",
            )
        prev_lsn, prev_hash = rec.lsn, rec.hash
        checked += 1
    return ChainReport(True, checked, first, prev_lsn if checked else None)


def verify_store(store: Store) -> ChainReport:
    """Verify the whole log held by a store, from its trim checkpoint (or genesis)."""
    cp = store.get_meta("checkpoint")
    start_lsn, start_hash = 0, GENESIS_HASH
    if cp:
        data = json.loads(cp)
        start_lsn, start_hash = int(data["lsn"]), str(data["hash"])
    try:
        return check_chain(store.iter_records(start_lsn), start_lsn, start_hash)
    except ValueError as exc:  # a row that is not a record at all
        return ChainReport(False, 0, None, None, None, str(exc))
