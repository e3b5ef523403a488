"""Change-log records, the position type, and the hash chain over them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

GENESIS_HASH = "0" * 64
OPS = ("insert", "update", "delete")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, order=True)
class Position:
    """Where a site is: the timeline (epoch) and the log sequence number on it."""

    epoch: int
    lsn: int

    def __str__(self) -> str:
        return f"{self.epoch}/{self.lsn}"


@dataclass(frozen=True)
class Record:
    lsn: int
    epoch: int
    site: str
    committed_at: int  # UTC microseconds
    txn: int
    tenant: str | None
    entity: str
    key: str
    op: str
    payload: str | None  # canonical JSON of the full row, None for delete
    prev_hash: str
    hash: str

    @property
    def position(self) -> Position:
        return Position(self.epoch, self.lsn)

    def row(self) -> dict[str, Any] | None:
        return None if self.payload is None else json.loads(self.payload)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        try:
            rec = cls(
                lsn=int(data["lsn"]),
                epoch=int(data["epoch"]),
                site=str(data["site"]),
                committed_at=int(data["committed_at"]),
                txn=int(data["txn"]),
                tenant=None if data["tenant"] is None else str(data["tenant"]),
                entity=str(data["entity"]),
                key=str(data["key"]),
                op=str(data["op"]),
                payload=None if data["payload"] is None else str(data["payload"]),
                prev_hash=str(data["prev_hash"]),
                hash=str(data["hash"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed change-log record: {exc}") from exc
        if rec.op not in OPS:
            raise ValueError(f"malformed change-log record {rec.lsn}: unknown op {rec.op!r}")
        return rec

    def expected_hash(self) -> str:
        return chain_hash(
            self.prev_hash,
            self.lsn,
            self.epoch,
            self.site,
            self.committed_at,
            self.txn,
            self.tenant,
            self.entity,
            self.key,
            self.op,
            self.payload,
        )


def chain_hash(
    prev_hash: str,
    lsn: int,
    epoch: int,
    site: str,
    committed_at: int,
    txn: int,
    tenant: str | None,
    entity: str,
    key: str,
    op: str,
    payload: str | None,
) -> str:
    body = canonical_json([lsn, epoch, site, committed_at, txn, tenant, entity, key, op, payload])
    return hashlib.sha256(prev_hash.encode() + b"\n" + body.encode()).hexdigest()
