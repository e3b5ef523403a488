"""Fencing: a site that learns of a newer epoch, or is demoted, stops accepting writes at once."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from standby.store import NotWritable

if TYPE_CHECKING:
    from standby.server import Site

log = logging.getLogger("standby.replication.fencing")

FENCED = "replication_fenced"  # site.parts key: the in-memory reason (checked first, no I/O)


def fenced_reason(site: Site) -> str | None:
    reason = site.parts.get(FENCED)
    return str(reason) if reason else None


def fence(site: Site, reason: str) -> None:
    """Refuse writes from now on: in memory at once, then durably (survives a restart)."""
    already = fenced_reason(site)
    site.parts[FENCED] = reason
    site.store.set_meta("fenced", reason)
    if not already:
        log.warning(
            json.dumps(
                {"event": "fenced", "site": site.name, "epoch": site.epoch, "reason": reason}
            )
        )


def unfence(site: Site) -> None:
    site.parts.pop(FENCED, None)
    site.store.set_meta("fenced", "")


def load(site: Site) -> None:
    """At startup: a fence set before a restart still holds."""
    reason = site.store.get_meta("fenced")
    if reason:
        site.parts[FENCED] = reason


def guard(site: Site) -> None:
    reason = fenced_reason(site)
    if reason:
        raise NotWritable(f"site {site.name!r} is fenced: {reason}")


def observe_epoch(site: Site, epoch: int, source: str) -> bool:
    """A primary that sees a higher epoch than its own is no longer the primary: fence."""
    if epoch > site.epoch and site.role == "primary":
        fence(site, f"{source} is on epoch {epoch}, newer than this site's {site.epoch}")
        return True
    return False
