"""Authenticated manifests: JSON describing stored objects, with an HMAC-SHA256 under a
sub-key of the backup key (key id recorded), so a manifest cannot be forged or edited.

Two kinds: a *set* manifest (a snapshot: position, time, row counts, its object) and a
*segment* manifest (sealed change-log records: LSN and time range, chain hashes).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from standby.backup.crypto import Keyring, derive, key_id
from standby.backup.errors import CorruptObject

FORMAT = "standby-backup/1"


def _body(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def sign(keyring: Keyring, data: dict[str, Any]) -> bytes:
    payload = {**data, "format": FORMAT, "key_id": keyring.current_id}
    mac = hmac.new(derive(keyring.current, "manifest"), _body(payload), hashlib.sha256)
    return json.dumps({**payload, "mac": mac.hexdigest()}, sort_keys=True, indent=1).encode()


def load(keyring: Keyring, name: str, blob: bytes) -> dict[str, Any]:
    """Parse and authenticate a manifest; raise CorruptObject or WrongKey naming it."""
    try:
        data = json.loads(blob)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        mac = str(data.pop("mac"))
        kid = str(data["key_id"])
    except (ValueError, KeyError) as exc:
        raise CorruptObject(name, f"unreadable manifest ({exc})") from None
    if data.get("format") != FORMAT:
        raise CorruptObject(name, f"unknown format {data.get('format')!r}")
    key = keyring.get(kid, f"manifest {name}")
    want = hmac.new(derive(key, "manifest"), _body(data), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, mac):
        raise CorruptObject(name, "manifest authentication failed (edited or forged)")
    return data


@dataclass(frozen=True)
class ObjectRef:
    """One stored object as a manifest lists it."""

    name: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "size": self.size}

    @classmethod
    def of(cls, name: str, blob: bytes) -> ObjectRef:
        return cls(name, hashlib.sha256(blob).hexdigest(), len(blob))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ObjectRef:
        return cls(str(d["name"]), str(d["sha256"]), int(d["size"]))

    def check(self, blob: bytes) -> None:
        if len(blob) != self.size:
            raise CorruptObject(self.name, f"size {len(blob)} differs from manifest {self.size}")
        if not hmac.compare_digest(hashlib.sha256(blob).hexdigest(), self.sha256):
            raise CorruptObject(self.name, "SHA-256 differs from the manifest")


__all__ = ["FORMAT", "ObjectRef", "key_id", "load", "sign"]
