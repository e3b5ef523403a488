"""Fetching, checking and decrypting what a restore plan names — all of it before a
single byte goes to the target, so a wrong key or a corrupt object writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from standby.backup import crypto, segments, snapshot
from standby.backup.context import Backups
from standby.backup.errors import CorruptObject, MissingSegment
from standby.backup.manifest import ObjectRef
from standby.backup.plan import Plan, Target, format_us
from standby.store import Record
from standby.store.verify import check_chain

Progress = Callable[[str, int, int], None]


@dataclass
class Loaded:
    set: dict[str, Any]
    snapshot: snapshot.Snapshot
    records: list[Record] = field(default_factory=list)
    # The point reached: last record replayed (or the snapshot's head).
    lsn: int = 0
    epoch: int = 0
    committed_at: int = 0
    notes: list[str] = field(default_factory=list)


def fetch_object(backups: Backups, ref: ObjectRef) -> bytes:
    blob = backups.storage.get(ref.name)
    ref.check(blob)
    return crypto.open_sealed(backups.keyring, ref.name, blob)


def load(
    backups: Backups,
    p: Plan,
    target: Target,
    tenant: str | None = None,
    progress: Progress | None = None,
) -> Loaded:
    m = p.set
    total = len(p.segments) + 1
    ref = ObjectRef.from_dict(m["objects"][0])
    snap = snapshot.parse(fetch_object(backups, ref), tenant)
    if snap.head.lsn != int(m["lsn"]) or snap.head.hash != m["hash"]:
        raise CorruptObject(ref.name, "snapshot head differs from its manifest")
    if progress:
        progress("load", 1, total)
    out = Loaded(m, snap, lsn=snap.head.lsn, epoch=snap.head.epoch)
    out.committed_at = snap.head.committed_at
    pos_lsn, pos_hash = snap.head.lsn, snap.head.hash
    done = False
    for i, seg in enumerate(p.segments):
        sm = backups.catalog.read_manifest(seg.manifest_name)
        if target.time_us is not None and int(sm["first_time"]) > target.time_us:
            done = True
            break
        recs = segments.decode(fetch_object(backups, ObjectRef.from_dict(sm["objects"][0])))
        if not recs or recs[0].lsn != sm["first_lsn"] or recs[-1].lsn != sm["last_lsn"]:
            raise CorruptObject(seg.object_name, "records do not match the manifest's LSN range")
        recs = [r for r in recs if r.lsn > pos_lsn]
        report = check_chain(recs, pos_lsn, pos_hash)
        if not report.ok:
            raise CorruptObject(seg.object_name, f"hash chain broken: {report.problem}")
        keep = _cut(recs, target)
        if len(keep) < len(recs):
            if keep and target.lsn is not None and recs[len(keep)].txn == keep[-1].txn:
                txn = keep[-1].txn
                whole = [r for r in keep if r.txn != txn]
                out.notes.append(
                    f"lsn {target.lsn} is inside the transaction starting at lsn {txn}; "
                    f"stopped at the last whole transaction (lsn {txn - 1})"
                )
                keep = whole
            done = True
        if keep:
            last = keep[-1]
            out.lsn, out.epoch, out.committed_at = last.lsn, last.epoch, last.committed_at
            out.records.extend(r for r in keep if tenant is None or r.tenant in (tenant, None))
        pos_lsn, pos_hash = recs[-1].lsn, recs[-1].hash
        if progress:
            progress("load", i + 2, total)
        if done:
            break
    if not done:
        _check_end(backups, p, target, out)
    return out


def _cut(recs: list[Record], target: Target) -> list[Record]:
    keep = []
    for r in recs:
        if target.lsn is not None and r.lsn > target.lsn:
            break
        if target.time_us is not None and r.committed_at > target.time_us:
            break
        keep.append(r)
    return keep


def _check_end(backups: Backups, p: Plan, target: Target, out: Loaded) -> None:
    """The archive ran out before the target: a gap is an error, and so is an LSN
    target past the end; a time past the end restores everything there is."""
    if p.after_gap is not None:
        gap_first = out.lsn + 1 if not p.segments else p.segments[-1].last_lsn + 1
        if target.time_us is not None:
            sm = backups.catalog.read_manifest(p.after_gap.manifest_name)
            if int(sm["first_time"]) > target.time_us:
                return
        raise MissingSegment(
            f"missing segment: records {gap_first}..{p.after_gap.first_lsn - 1} are not in "
            f"the archive ({backups.storage.description}); the next segment is "
            f"{p.after_gap.object_name}. Restore to lsn {gap_first - 1} at most, "
            "or restore the missing objects"
        )
    if target.lsn is not None and out.lsn < target.lsn:
        raise MissingSegment(
            f"lsn {target.lsn} is not archived: the archive ends at lsn {out.lsn}; run "
            "`standby backup archive` on the primary, or restore to an earlier point"
        )
    if target.time_us is not None and out.committed_at < target.time_us:
        out.notes.append(
            f"the archive ends before {format_us(target.time_us)}; restored to its end"
        )
