"""Sealing secrets that live in rows (TOTP seeds, signing keys) under the key-encryption key.

AES-256-GCM with a random 96-bit nonce; the associated data binds a ciphertext to the
row and column it belongs to, so a sealed value cannot be moved to another row.
"""

from __future__ import annotations

import base64
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "gcm1:"


class SealError(Exception):
    """A sealed value could not be opened: wrong key, wrong row, or altered data."""


def seal(key: bytes, plaintext: bytes, aad: str) -> str:
    nonce = os.urandom(12)
    ct = AESGCM(key).encrypt(nonce, plaintext, aad.encode())
    return PREFIX + base64.urlsafe_b64encode(nonce + ct).decode()


def unseal(key: bytes, sealed: str, aad: str) -> bytes:
    if not sealed.startswith(PREFIX):
        raise SealError("value is not sealed with a known format")
    try:
        raw = base64.urlsafe_b64decode(sealed[len(PREFIX) :].encode())
        return AESGCM(key).decrypt(raw[:12], raw[12:], aad.encode())
    except (InvalidTag, ValueError) as exc:
        raise SealError(
            "cannot decrypt a sealed value: the key-encryption key is wrong or the data was altered"
        ) from exc


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    ab = a.encode() if isinstance(a, str) else a
    bb = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(ab, bb)
