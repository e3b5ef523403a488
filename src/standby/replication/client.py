"""How one site talks to another's replication API: auth and epoch headers, error bodies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from standby.server import Site


class PeerError(Exception):
    """The other site refused or could not be reached; the message says which and why."""

    def __init__(self, message: str, status: int = 0, body: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.body = body or {}


def headers(site: Site) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {site.secrets.replication_secret.get_secret_value()}",
        "Standby-Epoch": str(site.epoch),
        "Standby-Site": site.name,
    }


def error_of(url: str, resp: httpx.Response) -> PeerError:
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if resp.status_code == 401:
        msg = f"{url} refused our replication secret (401): the sites' secrets differ"
    else:
        detail = body.get("message") or resp.text[:200]
        msg = f"{url} answered {resp.status_code} {body.get('error', '')}: {detail}"
    return PeerError(msg, resp.status_code, body)


def primary_url(site: Site) -> str | None:
    """Where this standby replicates from: set by /replication/follow, else the config."""
    url = site.store.get_meta("primary_url") or site.settings.replication.primary_url
    return url.rstrip("/") if url else None
