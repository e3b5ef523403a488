"""The envelope and the manifest: round trips, key rotation, and every kind of tampering
is refused with an error that names the object."""

from __future__ import annotations

import os

import pytest

from standby.backup import crypto, manifest
from standby.backup.errors import CorruptObject, WrongKey


def _ring(*old: bytes) -> crypto.Keyring:
    return crypto.Keyring(os.urandom(32), list(old))


def test_round_trip_compresses_and_hides_plaintext() -> None:
    ring = _ring()
    plain = b'{"username": "alice"}\n' * 2000
    blob = crypto.seal(ring, "sets/x/snapshot.sbk", "snapshot", plain)
    assert b"alice" not in blob
    assert len(blob) < len(plain) // 10
    assert crypto.open_sealed(ring, "sets/x/snapshot.sbk", blob) == plain


def test_fresh_data_key_per_object() -> None:
    ring = _ring()
    a = crypto.seal(ring, "n", "segment", b"same")
    b = crypto.seal(ring, "n", "segment", b"same")
    assert (
        crypto.read_header("n", a)[0]["wrapped_key"] != crypto.read_header("n", b)[0]["wrapped_key"]
    )


def test_old_backups_open_after_rotation_with_keyring() -> None:
    old = _ring()
    blob = crypto.seal(old, "seg", "segment", b"data")
    rotated = crypto.Keyring(os.urandom(32), [old.current])
    assert crypto.open_sealed(rotated, "seg", blob) == b"data"
    with pytest.raises(WrongKey, match="seg.*not in the keyring"):
        crypto.open_sealed(_ring(), "seg", blob)


@pytest.mark.parametrize("where", [9, 30, -1, -20])
def test_flipped_byte_is_refused_naming_the_object(where: int) -> None:
    ring = _ring()
    blob = bytearray(crypto.seal(ring, "segments/a.sbk", "segment", b"x" * 500))
    blob[where] ^= 0x01
    with pytest.raises((CorruptObject, WrongKey), match="segments/a.sbk"):
        crypto.open_sealed(ring, "segments/a.sbk", bytes(blob))


def test_object_cannot_be_renamed() -> None:
    ring = _ring()
    blob = crypto.seal(ring, "segments/a.sbk", "segment", b"x")
    with pytest.raises(CorruptObject, match="segments/b.sbk"):
        crypto.open_sealed(ring, "segments/b.sbk", blob)


def test_manifest_is_authenticated() -> None:
    ring = _ring()
    blob = manifest.sign(ring, {"kind": "set", "lsn": 5})
    assert manifest.load(ring, "m.json", blob)["lsn"] == 5
    forged = blob.replace(b'"lsn": 5', b'"lsn": 6')
    assert forged != blob
    with pytest.raises(CorruptObject, match="m.json"):
        manifest.load(ring, "m.json", forged)
    with pytest.raises(WrongKey, match="m.json"):
        manifest.load(_ring(), "m.json", blob)
    with pytest.raises(CorruptObject, match="m.json"):
        manifest.load(ring, "m.json", b"not json")


def test_object_ref_checks_size_and_digest() -> None:
    ref = manifest.ObjectRef.of("o", b"abc")
    ref.check(b"abc")
    with pytest.raises(CorruptObject, match="size"):
        ref.check(b"abcd")
    with pytest.raises(CorruptObject, match="SHA-256"):
        ref.check(b"abd")
