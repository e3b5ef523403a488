"""Encrypted backups: snapshots + archived change-log segments, point-in-time restore,
and verified restores (see docs/backup-format.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from standby.server import Site


def mount(app: FastAPI, site: Site) -> None:
    """Register the archiver, scheduled backup/verify tasks and the backup metric."""
    from standby.backup.schedule import install

    install(site)
