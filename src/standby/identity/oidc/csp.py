"""The Content-Security-Policy of the hosted pages.

Strict: nothing loads but the page's inline style, no page can frame it, and forms post
only to this site. Chromium checks ``form-action`` against every hop of a form POST's
redirect chain, and the login and sign-out forms end at the client's redirect URI on
another origin; so a page holding such a form also names that one URI's origin (the
origin only: after a redirect CSP ignores paths anyway).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

# CSP host-source grammar (host-char = ALPHA / DIGIT / "-"): anything else, such as an
# IPv6 literal, is dropped by browsers as an invalid source, and must never reach the
# header unchecked (";" or "," would start another directive or policy).
_HOST = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*")


def origin_source(uri: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) ``uri`` as a CSP source expression, or None
    when CSP cannot name that origin (an IPv6 literal, a host outside the grammar)."""
    try:
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    try:
        host = host.encode("idna").decode("ascii")  # an internationalised name, as DNS has it
    except UnicodeError:
        return None
    if not _HOST.fullmatch(host):
        return None
    return f"{parts.scheme}://{host}" + ("" if port is None else f":{port}")


def policy(form_targets: Iterable[str] = ()) -> str:
    """The header value for a page whose forms may end (after redirects) at ``form_targets``."""
    sources = ["'self'"]
    for uri in form_targets:
        source = origin_source(uri)
        if source is not None and source not in sources:
            sources.append(source)
    return "; ".join(
        (
            "default-src 'none'",
            "style-src 'unsafe-inline'",
            "form-action " + " ".join(sources),
            "frame-ancestors 'none'",
        )
    )
