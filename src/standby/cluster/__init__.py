"""Topology, health checks, the controller (failure detection, failover, failback), the DCS
and traffic backends."""
