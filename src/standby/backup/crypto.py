"""The envelope every stored object is sealed in: zstd, then AES-256-GCM under a fresh
data key, the data key wrapped (AES-256-GCM) by a backup key named by its key id.

Layout: ``b"SBK1"`` | 4-byte big-endian header length | header JSON | ciphertext.
The header (key id, wrapped data key, nonces, object name, kind) is the GCM associated
data, so an object cannot be renamed, swapped or have its header edited unnoticed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from standby.backup.errors import CorruptObject, WrongKey

MAGIC = b"SBK1"
ALG = "zstd+aes-256-gcm"
WRAP_AAD = b"standby-backup-data-key"
ZSTD_LEVEL = 3


def key_id(key: bytes) -> str:
    """A public name for a backup key: it identifies the key without revealing it."""
    return hashlib.sha256(b"standby-backup-key-id\n" + key).hexdigest()[:16]


def derive(key: bytes, purpose: str) -> bytes:
    """A sub-key for one purpose (manifest MACs, the canary password)."""
    return hmac.new(key, b"standby-backup\n" + purpose.encode(), hashlib.sha256).digest()


@dataclass
class Keyring:
    """The current backup key (used to write) and old ones (kept to read old backups)."""

    current: bytes
    old: list[bytes] = field(default_factory=list)

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def get(self, kid: str, what: str) -> bytes:
        for key in (self.current, *self.old):
            if hmac.compare_digest(key_id(key), kid):
                return key
        raise WrongKey(
            f"{what} was written with backup key id {kid}, which is not in the keyring "
            f"(current key id {self.current_id}); add the old key to backup_keys_old "
            "in the secrets file, or use the secrets file the backup was made with"
        )

    def all(self) -> list[bytes]:
        return [self.current, *self.old]


def seal(keyring: Keyring, name: str, kind: str, plaintext: bytes) -> bytes:
    data_key = AESGCM.generate_key(bit_length=256)
    wrap_nonce, nonce = os.urandom(12), os.urandom(12)
    kid = keyring.current_id
    wrapped = AESGCM(keyring.current).encrypt(wrap_nonce, data_key, WRAP_AAD + kid.encode())
    header: dict[str, Any] = {
        "v": 1,
        "alg": ALG,
        "key_id": kid,
        "wrap_nonce": wrap_nonce.hex(),
        "wrapped_key": wrapped.hex(),
        "nonce": nonce.hex(),
        "name": name,
        "kind": kind,
        "plain_size": len(plaintext),
    }
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    body = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(plaintext)
    ct = AESGCM(data_key).encrypt(nonce, body, head)
    return MAGIC + struct.pack(">I", len(head)) + head + ct


def read_header(name: str, blob: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    if len(blob) < 8 or blob[:4] != MAGIC:
        raise CorruptObject(name, "not a Standby backup object (bad magic)")
    (hlen,) = struct.unpack(">I", blob[4:8])
    head = blob[8 : 8 + hlen]
    try:
        header = json.loads(head)
        if not isinstance(header, dict) or header.get("alg") != ALG:
            raise ValueError("unknown algorithm")
    except ValueError as exc:
        raise CorruptObject(name, f"unreadable header ({exc})") from None
    return header, head, blob[8 + hlen :]


def open_sealed(keyring: Keyring, name: str, blob: bytes) -> bytes:
    """Decrypt and decompress an object; raise WrongKey or CorruptObject naming it."""
    header, head, ct = read_header(name, blob)
    if header.get("name") != name:
        raise CorruptObject(name, f"its header names another object ({header.get('name')!r})")
    kid = str(header.get("key_id"))
    key = keyring.get(kid, f"object {name}")
    try:
        data_key = AESGCM(key).decrypt(
            bytes.fromhex(header["wrap_nonce"]),
            bytes.fromhex(header["wrapped_key"]),
            WRAP_AAD + kid.encode(),
        )
    except (InvalidTag, ValueError, KeyError) as exc:
        raise CorruptObject(name, "its wrapped data key does not open (header altered)") from exc
    try:
        body = AESGCM(data_key).decrypt(bytes.fromhex(header["nonce"]), ct, head)
    except (InvalidTag, ValueError) as exc:
        raise CorruptObject(name, "AES-GCM authentication failed (data altered)") from exc
    try:
        plain = zstandard.ZstdDecompressor().decompress(
            body, max_output_size=int(header.get("plain_size", 0)) or 2**31
        )
    except zstandard.ZstdError as exc:
        raise CorruptObject(name, f"zstd: {exc}") from exc
    return plain
