"""Backup stores: a local directory (default) or S3-compatible object storage."""

from __future__ import annotations

from standby.backup.errors import BackupError
from standby.backup.storage.base import Storage, StoredObject
from standby.settings import BackupSettings, Secrets


def make_storage(settings: BackupSettings, secrets: Secrets) -> Storage:
    if settings.backend == "s3":
        from standby.backup.storage.s3 import S3Storage

        if not settings.s3_bucket:
            raise BackupError("backup.s3_bucket is not set; name the bucket in the config")
        return S3Storage(
            settings.s3_bucket,
            settings.s3_prefix,
            endpoint=settings.s3_endpoint,
            region=settings.s3_region,
            access_key=secrets.s3_access_key.get_secret_value() if secrets.s3_access_key else None,
            secret_key=secrets.s3_secret_key.get_secret_value() if secrets.s3_secret_key else None,
        )
    from standby.backup.storage.local import LocalStorage

    return LocalStorage(settings.directory)


__all__ = ["Storage", "StoredObject", "make_storage"]
