"""Everything a backup operation needs, built once from the site's settings and secrets."""

from __future__ import annotations

from dataclasses import dataclass

from standby.backup.catalog import Catalog
from standby.backup.crypto import Keyring
from standby.backup.errors import WrongKey
from standby.backup.storage import Storage, make_storage
from standby.settings import ConfigError, Secrets, SiteSettings


def keyring_from(secrets: Secrets) -> Keyring:
    try:
        return Keyring(secrets.backup_key_bytes(), secrets.old_backup_keys_bytes())
    except ConfigError as exc:
        raise WrongKey(str(exc)) from exc


@dataclass
class Backups:
    settings: SiteSettings
    secrets: Secrets
    storage: Storage
    keyring: Keyring
    catalog: Catalog

    @classmethod
    def open(cls, settings: SiteSettings, secrets: Secrets) -> Backups:
        storage = make_storage(settings.backup, secrets)
        keyring = keyring_from(secrets)
        return cls(settings, secrets, storage, keyring, Catalog(storage, keyring))
