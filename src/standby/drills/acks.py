"""The acknowledgement log: one entry per workload request, with who answered it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Ack:
    """One request of the workload and its outcome.

    Times are seconds: ``*_mono`` on the drill process's monotonic clock (compare with
    fault times taken in the same process), ``*_wall`` UTC epoch seconds."""

    op: str  # login | write | token
    key: str  # username (login, write) or client/user (token)
    send_mono: float
    recv_mono: float
    send_wall: float
    recv_wall: float
    ok: bool
    status: int | None = None
    error: str | None = None  # kind, e.g. "connect_error", "timeout", "http_503 not_writable"
    site: str | None = None  # Standby-Site of the answer
    epoch: int | None = None  # Standby-Epoch of the answer

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ack:
        return cls(**data)


def write_jsonl(path: Path, acks: list[Ack]) -> None:
    with path.open("w") as fh:
        for ack in acks:
            fh.write(json.dumps(ack.to_dict()) + "\n")


def read_jsonl(path: Path) -> list[Ack]:
    return [Ack.from_dict(json.loads(line)) for line in path.read_text().splitlines() if line]
