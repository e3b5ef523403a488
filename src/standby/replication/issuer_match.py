"""Does this standby issue tokens under the same issuer as its primary?

A standby learns its primary's public URL and issuer base (its public ``/healthz``)
each time it connects to the stream. While the two issuers differ, the standby's
``/readyz`` fails: after a failover relying parties would reject every token it issued,
and it would introspect the primary's tokens as inactive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from standby.replication.state import state_of

if TYPE_CHECKING:
    from standby.server import Site


async def learn(site: Site, client: httpx.AsyncClient, url: str) -> None:
    """Ask the primary at ``url`` for its public URL and issuer base (None if it cannot say)."""
    progress = state_of(site).follower
    progress.primary_public_url = progress.primary_issuer_base = None
    try:
        resp = await client.get(f"{url}/healthz")
        body = resp.json() if resp.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return
    if isinstance(body, dict):
        public, base = body.get("public_url"), body.get("issuer_base")
        progress.primary_public_url = public if isinstance(public, str) else None
        progress.primary_issuer_base = base if isinstance(base, str) else None


def mismatch(site: Site) -> str | None:
    """Why this standby's issuer differs from its primary's, or None.

    Two sites that both leave ``http.public_url`` unset differ too (each names its own
    host:port); that is reported as a warning on each site rather than failing here, so
    configurations written before the setting existed keep their standby ready."""
    if site.role != "standby":
        return None
    progress = state_of(site).follower
    theirs = progress.primary_issuer_base
    if theirs is None:
        return None
    if site.settings.http.public_url is None and progress.primary_public_url is None:
        return None
    ours = site.settings.base_url()
    if ours == theirs.rstrip("/"):
        return None
    return (
        f"issuer differs from the primary's: this site issues as {ours}/t/<tenant>, its "
        f"primary ({progress.primary_url}) as {theirs}/t/<tenant>, so relying parties would "
        "reject this site's tokens after a failover; set the same http.public_url on every site"
    )
