"""Traffic backends: the builtin asyncio router and HAProxy, behind ``TrafficBackend``."""

from standby.cluster.traffic.base import TrafficBackend, make_backend

__all__ = ["TrafficBackend", "make_backend"]
