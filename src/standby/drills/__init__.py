"""Drills: a workload through the router, injected faults, and measured RTO/RPO reports."""
