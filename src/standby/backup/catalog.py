"""What the backup store holds: sets (snapshots), sealed segments and verification
results, read through their authenticated manifests. Object names encode what they are:

    sets/<set_id>/snapshot.sbk + sets/<set_id>/manifest.json
    segments/<first_lsn>-<last_lsn>-e<epoch>.sbk + .json
    verify/<set_id>/<utc time>.json
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from standby.backup import manifest
from standby.backup.crypto import Keyring
from standby.backup.errors import BackupError
from standby.backup.storage.base import Storage

SEGMENT_NAME = re.compile(r"^segments/(\d{20})-(\d{20})-e(\d+)\.json$")


def set_object(set_id: str) -> str:
    return f"sets/{set_id}/snapshot.sbk"


def set_manifest(set_id: str) -> str:
    return f"sets/{set_id}/manifest.json"


def segment_base(first: int, last: int, epoch: int) -> str:
    return f"segments/{first:020d}-{last:020d}-e{epoch}"


def new_set_id(at: float, lsn: int) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(at)) + f"{int(at * 1e6) % 1_000_000:06d}Z"
    return f"{stamp}-{lsn}"


@dataclass(frozen=True, order=True)
class SegmentEntry:
    """A sealed segment as its manifest's name tells it (no fetch needed)."""

    first_lsn: int
    last_lsn: int
    epoch: int
    manifest_name: str

    @property
    def object_name(self) -> str:
        return self.manifest_name[: -len(".json")] + ".sbk"


class Catalog:
    def __init__(self, storage: Storage, keyring: Keyring) -> None:
        self.storage = storage
        self.keyring = keyring

    def read_manifest(self, name: str) -> dict[str, Any]:
        return manifest.load(self.keyring, name, self.storage.get(name))

    # ------------------------------------------------------------ sets

    def sets(self, strict: bool = True) -> list[dict[str, Any]]:
        """Every set's manifest, oldest first. Not strict: a bad one becomes {id, error}."""
        out = []
        for obj in self.storage.list("sets/"):
            if not obj.name.endswith("/manifest.json"):
                continue
            try:
                out.append(self.read_manifest(obj.name))
            except BackupError as exc:
                if strict:
                    raise
                out.append({"id": obj.name.split("/")[1], "error": str(exc), "lsn": -1})
        return sorted(out, key=lambda m: (str(m["id"])[:23], int(m.get("lsn", -1))))

    # ------------------------------------------------------------ segments

    def segments(self) -> list[SegmentEntry]:
        out = []
        for obj in self.storage.list("segments/"):
            m = SEGMENT_NAME.match(obj.name)
            if m:
                out.append(SegmentEntry(int(m[1]), int(m[2]), int(m[3]), obj.name))
        return sorted(out)

    def last_segment(self) -> SegmentEntry | None:
        segs = self.segments()
        return max(segs, key=lambda s: (s.last_lsn, s.epoch)) if segs else None

    # ------------------------------------------------------------ verification results

    def record_verification(self, result: dict[str, Any]) -> str:
        at = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(float(result["at"])))
        name = f"verify/{result['set_id']}/{at}.json"
        self.storage.put(name, manifest.sign(self.keyring, {"kind": "verification", **result}))
        return name

    def verifications(self) -> dict[str, dict[str, Any]]:
        """The latest verification result per set id (unauthenticated ones are skipped)."""
        latest: dict[str, dict[str, Any]] = {}
        for obj in self.storage.list("verify/"):
            try:
                data = self.read_manifest(obj.name)
            except BackupError:
                continue
            sid = str(data.get("set_id"))
            if sid not in latest or float(data["at"]) >= float(latest[sid]["at"]):
                latest[sid] = data
        return latest

    def last_verified_ok(self) -> float | None:
        times = [float(v["at"]) for v in self.verifications().values() if v.get("ok")]
        return max(times) if times else None
