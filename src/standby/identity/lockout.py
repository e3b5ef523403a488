"""Durable lockout decisions (pure): the state lives in the user row, so it replicates
and survives restarts."""

from __future__ import annotations

from typing import Any

from standby.identity.clock import US
from standby.settings import LockoutSettings


def is_locked(row: dict[str, Any], at: int) -> bool:
    until = row.get("locked_until")
    return until is not None and at < int(until)


def after_failure(row: dict[str, Any], at: int, settings: LockoutSettings) -> dict[str, Any]:
    """Column changes after a failed login: count it, and lock once the count reaches
    ``max_failures`` (the count restarts from zero for the next round)."""
    failures = int(row.get("failed_logins") or 0) + 1
    if failures >= settings.max_failures:
        return {"failed_logins": 0, "locked_until": at + settings.lock_seconds * US}
    return {"failed_logins": failures}


def after_success(row: dict[str, Any]) -> dict[str, Any]:
    """Column changes after a successful login: forget earlier failures."""
    if row.get("failed_logins") or row.get("locked_until") is not None:
        return {"failed_logins": 0, "locked_until": None}
    return {}
