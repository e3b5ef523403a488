"""Catch-up from the backup archive, for a standby behind what the primary's log holds.

The primary answers 410 ``gone`` when records the standby needs were trimmed from its
log. Those records are in the archive's change-log segments (the backup part seals
them continuously on the primary): read the segments that continue our head, check and
apply them like streamed records, then stream the rest.
"""

from __future__ import annotations

import json
import logging

from standby.server import Site
from standby.store import Record, StoreError

log = logging.getLogger("standby.replication.catchup")


class CatchupError(StoreError):
    """The archive cannot bridge the gap; the message says what is missing."""


def from_archive(site: Site, oldest_on_primary: int) -> int:
    """Apply archived records after our position until the primary's log can continue.

    Returns how many records were applied. Blocking (runs in a worker thread).
    """
    from standby.backup import segments
    from standby.backup.context import Backups
    from standby.backup.errors import BackupError
    from standby.backup.load import fetch_object
    from standby.backup.manifest import ObjectRef
    from standby.replication.applier import apply_batch, position
    from standby.settings import ConfigError

    try:
        backups = Backups.open(site.settings, site.secrets)
        entries = backups.catalog.segments()
    except (BackupError, ConfigError) as exc:
        raise CatchupError(f"cannot read the backup archive: {exc}") from exc
    tenants = site.settings.replication.tenants
    pos = position(site)
    applied = 0
    for _ in range(len(entries) + 1):
        if pos >= oldest_on_primary - 1:
            break
        covering = [s for s in entries if s.first_lsn <= pos + 1 <= s.last_lsn]
        if not covering:
            raise CatchupError(
                f"the archive ({backups.storage.description}) has no segment holding lsn "
                f"{pos + 1}, and the primary's log starts at {oldest_on_primary}: restore "
                "this standby from a backup (standby restore), then start it again"
            )
        seg = max(covering, key=lambda s: (s.epoch, s.last_lsn))
        try:
            sm = backups.catalog.read_manifest(seg.manifest_name)
            recs = segments.decode(fetch_object(backups, ObjectRef.from_dict(sm["objects"][0])))
        except (BackupError, ValueError) as exc:
            raise CatchupError(f"archive segment {seg.object_name} unusable: {exc}") from exc
        recs = [r for r in recs if r.lsn > pos]
        if not recs:
            raise CatchupError(f"archive segment {seg.object_name} ends before lsn {pos + 1}")
        wanted: list[Record] = [
            r for r in recs if tenants is None or r.tenant is None or r.tenant in tenants
        ]
        apply_batch(site, wanted, recs[-1].lsn)
        applied += len(wanted)
        pos = recs[-1].lsn
    log.info(
        json.dumps(
            {"event": "archive_catchup", "site": site.name, "applied": applied, "position": pos}
        )
    )
    return applied
