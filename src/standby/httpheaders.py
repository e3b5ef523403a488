"""Header rewriting for a proxy hop (RFC 9110 section 7.6.1: hop-by-hop fields)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    named: set[bytes] = set()
    for key, value in headers:
        if key.lower() == b"connection":
            named.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return named


def end_to_end(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Drop hop-by-hop fields, every Proxy-* field and the fields named in Connection."""
    named = _connection_tokens(headers)
    out = []
    for key, value in headers:
        k = key.lower()
        if k.decode("latin-1") in HOP_BY_HOP or k in named or k.startswith(b"proxy-"):
            continue
        out.append((k, value))
    return out


def forwarded_request(
    headers: list[tuple[bytes, bytes]], client_ip: str | None, scheme: str
) -> list[tuple[bytes, bytes]]:
    """Request fields for the upstream: end-to-end ones plus X-Forwarded-For/Proto/Host.

    Host is left for the client library to set to the upstream's address; the original
    goes in X-Forwarded-Host."""
    out = []
    prior_xff = b""
    host = b""
    for key, value in end_to_end(headers):
        if key == b"x-forwarded-for":
            prior_xff = value if not prior_xff else prior_xff + b", " + value
        elif key == b"host":
            host = value
        elif key not in (b"x-forwarded-proto", b"x-forwarded-host"):
            out.append((key, value))
    if client_ip:
        ip = client_ip.encode()
        out.append((b"x-forwarded-for", prior_xff + b", " + ip if prior_xff else ip))
    elif prior_xff:
        out.append((b"x-forwarded-for", prior_xff))
    out.append((b"x-forwarded-proto", scheme.encode()))
    if host:
        out.append((b"x-forwarded-host", host))
    return out


def cookie_value(headers: Iterable[tuple[bytes, bytes]], name: str) -> str | None:
    """The value of cookie ``name`` in the request's Cookie fields, if any."""
    want = name.encode()
    for key, value in headers:
        if key.lower() != b"cookie":
            continue
        for part in value.split(b";"):
            k, sep, v = part.strip().partition(b"=")
            if sep and k == want:
                return v.decode("latin-1")
    return None


def request_target(scope: Mapping[str, Any]) -> str:
    """The path and query of an ASGI request as the client sent them."""
    target: bytes = scope.get("raw_path") or scope["path"].encode()
    if scope.get("query_string"):
        target += b"?" + scope["query_string"]
    return target.decode("latin-1")
