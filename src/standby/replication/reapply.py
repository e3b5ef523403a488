"""Re-applying quarantined records on the current primary, as new writes (new LSNs)."""

from __future__ import annotations

from collections.abc import Sequence

from standby.server import Site
from standby.store import Record


def reapply(site: Site, records: Sequence[Record]) -> list[int]:
    """Bring each named row to the record's image (or delete it), in one transaction.

    Goes through the normal write path, so it is logged, replicated, fenced and
    sync-confirmed like any other write.
    """
    with site.store.write() as w:
        for rec in records:
            row = rec.row()
            if rec.op == "delete" or row is None:
                w.delete(rec.entity, rec.key)
            elif w.get(rec.entity, rec.key) is None:
                w.insert(rec.entity, row)
            else:
                w.update(rec.entity, rec.key, {k: v for k, v in row.items() if k != "id"})
        return [r.lsn for r in w.records]
