"""What one site knows about replication at runtime: peers' acks, its own apply progress."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from standby.replication.signal import CommitSignal

if TYPE_CHECKING:
    from standby.replication.sync import SyncGate
    from standby.server import Site

PART = "replication"


@dataclass
class PeerAck:
    """A standby as the primary sees it (from its acks and stream requests)."""

    site: str
    lsn: int = 0
    epoch: int = 0
    acked_at: float = 0.0  # wall clock seconds
    connected: bool = False
    tenants: list[str] | None = None


@dataclass
class FollowerProgress:
    """The standby's own view: what it applied and what the primary last said it has."""

    primary_url: str | None = None
    position: int = 0  # everything <= position received and applied (or filtered out)
    applied_lsn: int = 0  # last record actually in the local log
    applied_committed_at: int = 0
    primary_head_lsn: int = 0
    primary_head_committed_at: int = 0
    primary_epoch: int = 0
    pending_bytes: int = 0  # bytes the primary still has for us (from its heartbeat)
    last_contact: float = 0.0  # monotonic seconds of the last line from the primary
    connected: bool = False
    last_error: str | None = None
    applied_records: int = 0
    rejected_batches: int = 0
    # What the primary said at the last connect (issuer_match compares them with ours).
    primary_public_url: str | None = None
    primary_issuer_base: str | None = None


@dataclass
class ReplicationState:
    signal: CommitSignal = field(default_factory=CommitSignal)
    peers: dict[str, PeerAck] = field(default_factory=dict)
    follower: FollowerProgress = field(default_factory=FollowerProgress)
    # Held while applying shipped records and while changing role, so a promotion
    # never interleaves with an in-flight batch.
    apply_lock: threading.Lock = field(default_factory=threading.Lock)
    wake_applier: asyncio.Event | None = None
    gate: SyncGate | None = None
    started: float = field(default_factory=time.monotonic)

    def peer(self, name: str) -> PeerAck:
        if name not in self.peers:
            self.peers[name] = PeerAck(name)
        return self.peers[name]

    def to_dict(self) -> dict[str, Any]:
        return {"peers": {k: vars(v) for k, v in self.peers.items()}}


def state_of(site: Site) -> ReplicationState:
    state = site.parts.get(PART)
    if state is None:
        state = ReplicationState()
        site.parts[PART] = state
    assert isinstance(state, ReplicationState)
    return state
