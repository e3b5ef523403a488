"""Do all sites issue under one public URL? (what `standby status` shows about issuers)"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from standby.cluster.health import SiteHealth


def summarize(health: Iterable[SiteHealth]) -> dict[str, Any]:
    """The issuer base every answering site reports, or which sites differ.

    ``issuer_base`` is set only when all sites that answered agree; ``unset`` names the
    sites without ``http.public_url`` (their issuer is their own host:port, which moves
    on failover even when, alone, it looks consistent)."""
    answered = [h for h in health if h.issuer_base]
    bases = {h.name: h.issuer_base for h in answered}
    unset = sorted(h.name for h in answered if h.public_url is None)
    distinct = set(bases.values())
    return {
        "issuer_base": next(iter(distinct)) if len(distinct) == 1 else None,
        "same": len(distinct) <= 1,
        "sites": bases,
        "public_url_unset": unset,
    }
