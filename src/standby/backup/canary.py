"""The canary user: a reserved tenant and user whose password is derived from the backup
key (HMAC), created at backup time so every verification can do a real password login
on the restored data without the password ever being stored anywhere."""

from __future__ import annotations

import base64
import json
import logging
from typing import TYPE_CHECKING

from standby.backup.crypto import Keyring, derive

if TYPE_CHECKING:
    from standby.server import Site

log = logging.getLogger("standby.backup")

CANARY_TENANT = "standby-backup-canary"
CANARY_USER = "canary"


def canary_password(key: bytes) -> str:
    return "Cn-" + base64.urlsafe_b64encode(derive(key, "canary-password")).decode().rstrip("=")


def ensure_canary(site: Site, keyring: Keyring) -> bool:
    """Create the canary tenant and user if missing; False when this site cannot write."""
    from standby.identity.tenants import create_tenant, get_tenant
    from standby.identity.users import create_user, find_user
    from standby.store import NotWritable

    try:
        if get_tenant(site, CANARY_TENANT) is None:
            create_tenant(site, CANARY_TENANT, "Standby backup canary", actor="backup")
        if find_user(site, CANARY_TENANT, CANARY_USER) is None:
            create_user(
                site,
                CANARY_TENANT,
                CANARY_USER,
                canary_password(keyring.current),
                display_name="restore-verification canary (do not delete)",
                actor="backup",
            )
    except NotWritable as exc:
        log.info(json.dumps({"event": "canary_skipped", "why": str(exc)}))
        return False
    return True
