"""The small interface every DCS backend implements (Patroni's lesson: plug-ins behind it).

The leader key holds the current primary and epoch and only changes by
compare-and-swap on its revision, so two controllers can never both move it. A lease
is granted to a holder for a TTL, renewed, and lapses when not renewed in time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


class DcsError(Exception):
    """The DCS cannot be reached or answered something unusable."""


@dataclass(frozen=True)
class Leader:
    primary: str
    epoch: int
    revision: int  # compare-and-swap token; 0 means "no leader key yet"


class Dcs(ABC):
    @abstractmethod
    async def get_leader(self) -> Leader | None:
        """The current primary and epoch, or None before the first put."""

    @abstractmethod
    async def put_leader(
        self, primary: str, epoch: int, *, expected_revision: int
    ) -> Leader | None:
        """Set primary and epoch if the key is still at ``expected_revision`` (0: absent).

        Returns the new leader, or None when another writer moved it first."""

    @abstractmethod
    async def lease_grant(self, holder: str, ttl: float) -> str:
        """A new lease for ``holder``; returns its id."""

    @abstractmethod
    async def lease_renew(self, lease_id: str) -> bool:
        """Extend the lease by its TTL; False when it already lapsed or is unknown."""

    @abstractmethod
    async def lease_remaining(self, lease_id: str) -> float | None:
        """Seconds left on the lease, or None when lapsed or unknown."""

    @abstractmethod
    async def lease_revoke(self, lease_id: str) -> None:
        """End the lease now (unknown ids are ignored)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
