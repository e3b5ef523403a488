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


def differs(ours: tuple[str | None, str], theirs: tuple[str | None, str | None]) -> bool:
    """Whether two sites' issuers differ in a way that must stop the standby.

    Each side is (http.public_url or None, issuer base). Two sites that both leave
    ``http.public_url`` unset differ too (each names its own host:port); that is left to
    the warning each of them reports, so configurations written before the setting
    existed keep their standby ready. An unknown primary issuer is no reason either."""
    (our_public, our_base), (their_public, their_base) = ours, theirs
    if their_base is None or (our_public is None and their_public is None):
        return False
    return our_base.rstrip("/") != their_base.rstrip("/")


def mismatch(site: Site) -> str | None:
    """Why this standby's issuer differs from its primary's (a readiness check), or None."""
    if site.role != "standby":
        return None
    progress = state_of(site).follower
    ours = site.settings.base_url()
    theirs = progress.primary_issuer_base
    if not differs((site.settings.http.public_url, ours), (progress.primary_public_url, theirs)):
        return None
    return (
        f"issuer differs from the primary's: this site issues as {ours}/t/<tenant>, its "
        f"primary ({progress.primary_url}) as {theirs}/t/<tenant>, so relying parties would "
        "reject this site's tokens after a failover; set the same http.public_url on every site"
    )
