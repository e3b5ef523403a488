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


__all__ = ["Dcs", "DcsError", "Leader", "make_dcs"]
