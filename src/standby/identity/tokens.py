"""Random identifiers and bearer tokens, and the hashes under which tokens are stored."""

from __future__ import annotations

import hashlib
import json
import secrets


def new_id() -> str:
    """A random row id (22 URL-safe characters, 128 bits)."""
    return secrets.token_urlsafe(16)


def new_token() -> str:
    """A bearer token (session, reset): 256 bits, URL-safe. Only its hash is stored."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """sha256 hex: the row id of a stored token (tokens are high-entropy, no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def json_list(text: str | None) -> list[str]:
    """A JSON list column as a Python list (empty when unset)."""
    return list(json.loads(text)) if text else []
