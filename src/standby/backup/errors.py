"""Backup errors for people: each names what failed (object, key, segment, endpoint)."""

from __future__ import annotations


class BackupError(Exception):
    """A backup or restore cannot go on; the message says what failed and what to do."""


class WrongKey(BackupError):
    """The backup key (or keyring) cannot open an object or manifest."""


class CorruptObject(BackupError):
    """A stored object or manifest does not match its checksum or authentication tag."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"corrupt object {name}: {why}")
        self.name = name


class MissingSegment(BackupError):
    """The archive has a gap: the records between two points are not there."""


class StorageUnavailable(BackupError):
    """The backup store cannot be reached or refused the request."""


class NoBackup(BackupError):
    """No backup set fits the request (none yet, or the target is before the oldest)."""


class TargetNotEmpty(BackupError):
    """The restore target already holds data and --force was not given."""
