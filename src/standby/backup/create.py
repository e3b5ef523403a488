"""Taking a backup set: make sure the canary exists, snapshot the store in one read
transaction, seal the snapshot, upload it, and only then write the set's manifest."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from standby.backup import crypto, manifest, snapshot
from standby.backup.canary import CANARY_TENANT, CANARY_USER, ensure_canary
from standby.backup.catalog import new_set_id, set_manifest, set_object
from standby.backup.context import Backups
from standby.backup.manifest import ObjectRef

if TYPE_CHECKING:
    from standby.server import Site

log = logging.getLogger("standby.backup")


def create_set(site: Site, backups: Backups, *, canary: bool = True) -> dict[str, Any]:
    """Take one backup set of the site's store; return its manifest."""
    started = time.time()
    has_canary = ensure_canary(site, backups.keyring) if canary else False
    data, head, counts = snapshot.take(site.store)
    set_id = new_set_id(started, head.lsn)
    name = set_object(set_id)
    blob = crypto.seal(backups.keyring, name, "snapshot", data)
    backups.storage.put(name, blob)
    body = {
        "kind": "set",
        "id": set_id,
        "site": site.name,
        "created_at": started,
        "finished_at": time.time(),
        "epoch": head.epoch,
        "lsn": head.lsn,
        "hash": head.hash,
        "lsn_time": head.committed_at,
        "store": "postgresql" if site.store.is_postgres else "sqlite",
        "plain_size": len(data),
        "row_counts": counts,
        "timeline": site.store.timeline(),
        "canary": {"tenant": CANARY_TENANT, "username": CANARY_USER} if has_canary else None,
        "objects": [ObjectRef.of(name, blob).to_dict()],
    }
    backups.storage.put(set_manifest(set_id), manifest.sign(backups.keyring, body))
    log.info(json.dumps({"event": "backup_set_created", "id": set_id, "lsn": head.lsn}))
    return body
