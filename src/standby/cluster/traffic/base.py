"""The traffic backend interface the controller drives, and the factory for a topology."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from standby.cluster.topology import ClusterSecrets, Topology
from standby.cluster.traffic.state import Change, ServerView


@runtime_checkable
class TrafficBackend(Protocol):
    """Moves client traffic between sites; weights are 0..100 per site name. The
    controller reads ``servers()`` every tick and brings them to what it wants with
    ``apply`` (``state.plan``); ``states`` says whether the backend has server states
    (ready / drain / maint) or weights only; ``in_flight`` counts the requests each
    site is handling (a switchover waits for them before fencing the primary)."""

    states: bool

    async def servers(self) -> dict[str, ServerView]: ...

    async def apply(self, changes: Sequence[Change]) -> None: ...

    async def in_flight(self) -> dict[str, int]: ...

    async def set_weights(self, weights: dict[str, int]) -> None: ...

    async def weights(self) -> dict[str, int]: ...


def make_backend(topology: Topology, secrets: ClusterSecrets) -> TrafficBackend:
    """The backend named by ``topology.traffic.backend``."""
    if topology.traffic.backend == "haproxy":
        from standby.cluster.traffic.haproxy import HaproxyBackend

        return HaproxyBackend(topology.traffic.haproxy.socket, topology.traffic.haproxy.backend)
    from standby.cluster.traffic.builtin_client import BuiltinRouterClient

    return BuiltinRouterClient(topology.traffic.listen, secrets.admin_token.get_secret_value())
