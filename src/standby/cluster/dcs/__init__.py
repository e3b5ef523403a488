"""The controller's distributed configuration store: leader key, epoch, leases."""

from __future__ import annotations

from standby.cluster.dcs.base import Dcs, DcsError, Leader
from standby.cluster.topology import DcsSettings


def make_dcs(settings: DcsSettings) -> Dcs:
    """The DCS backend the topology names."""
    if settings.backend == "etcd":
        from standby.cluster.dcs.etcd import EtcdDcs

        return EtcdDcs(settings.endpoints, settings.prefix)
    from standby.cluster.dcs.embedded import EmbeddedDcs

    return EmbeddedDcs(settings.path)


async def read_leader(settings: DcsSettings) -> Leader | None:
    """The current primary and epoch as the DCS holds them, read without creating or
    changing anything; DcsError when the DCS cannot be read."""
    if settings.backend == "etcd":
        from standby.cluster.dcs.etcd import EtcdDcs

        dcs = EtcdDcs(settings.endpoints, settings.prefix)
        try:
            return await dcs.get_leader()
        finally:
            await dcs.close()
    from standby.cluster.dcs.embedded import read_leader as read_embedded

    return read_embedded(settings.path)


__all__ = ["Dcs", "DcsError", "Leader", "make_dcs", "read_leader"]
