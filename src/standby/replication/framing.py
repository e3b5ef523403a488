"""The stream's wire format (NDJSON records + heartbeats) and transaction alignment. Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from standby.store.records import Record, canonical_json


class StreamError(Exception):
    """A line from the primary is not a record or heartbeat we can trust."""


@dataclass(frozen=True)
class Heartbeat:
    head_lsn: int
    head_committed_at: int
    epoch: int
    at: int
    through_lsn: int  # every record <= this (matching the filter) was sent before this line
    pending_bytes: int
    sync: bool = False  # the primary waits for our acks: send them at once

    def to_dict(self) -> dict[str, Any]:
        return {"heartbeat": True, **vars(self)}


def encode(item: Record | Heartbeat) -> bytes:
    return (canonical_json(item.to_dict()) + "\n").encode()


def decode(line: str) -> Record | Heartbeat:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise StreamError(f"not JSON: {line[:80]!r}") from exc
    if not isinstance(data, dict):
        raise StreamError(f"not a JSON object: {line[:80]!r}")
    if data.get("heartbeat") is True:
        try:
            return Heartbeat(
                head_lsn=int(data["head_lsn"]),
                head_committed_at=int(data.get("head_committed_at", 0)),
                epoch=int(data["epoch"]),
                at=int(data["at"]),
                through_lsn=int(data["through_lsn"]),
                pending_bytes=int(data.get("pending_bytes", 0)),
                sync=data.get("sync") is True,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StreamError(f"malformed heartbeat: {exc}") from exc
    try:
        rec = Record.from_dict(data)
    except ValueError as exc:
        raise StreamError(str(exc)) from exc
    if rec.hash != rec.expected_hash():
        raise StreamError(f"record {rec.lsn}: hash does not match its contents")
    return rec


def complete_prefix(records: Sequence[Record], batch_was_full: bool) -> list[Record]:
    """The longest prefix made of whole transactions.

    A batch cut by a LIMIT may end inside a transaction; its tail is held back so a
    standby never applies half a transaction. Returns [] when the whole batch is one
    unfinished transaction (the caller then reads a bigger batch).
    """
    if not batch_was_full or not records:
        return list(records)
    last_txn = records[-1].txn
    cut = next(i for i, r in enumerate(records) if r.txn == last_txn)
    return list(records[:cut])


def whole_transactions(buffer: Sequence[Record]) -> tuple[list[Record], list[Record]]:
    """Split received records into (complete transactions, the possibly-open last one)."""
    if not buffer:
        return [], []
    last_txn = buffer[-1].txn
    cut = next(i for i, r in enumerate(buffer) if r.txn == last_txn)
    return list(buffer[:cut]), list(buffer[cut:])
