"""Deep health checks of a site: GET /readyz (store + token issue/verify self-test)
and GET /replication/status (role, epoch, lag), each bounded by a timeout."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class SiteHealth:
    name: str
    reachable: bool  # /readyz answered at all
    ready: bool  # /readyz said ready (200)
    role: str | None = None
    epoch: int | None = None
    head_lsn: int | None = None
    applied_lsn: int | None = None
    head_hash: str | None = None
    lag_records: int | None = None
    lag_seconds: float | None = None
    fenced: bool | None = None
    problems: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)
    public_url: str | None = None  # http.public_url as the site reports it (None: unset)
    issuer_base: str | None = None  # what its issuers start with
    error: str | None = None
    status: dict[str, Any] | None = None  # the raw /replication/status, when answered

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reachable": self.reachable,
            "ready": self.ready,
            "role": self.role,
            "epoch": self.epoch,
            "head_lsn": self.head_lsn,
            "applied_lsn": self.applied_lsn,
            "lag_records": self.lag_records,
            "lag_seconds": self.lag_seconds,
            "fenced": self.fenced,
            "problems": self.problems,
            "warnings": self.warnings,
            "public_url": self.public_url,
            "issuer_base": self.issuer_base,
            "error": self.error,
        }


async def _get_json(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], timeout: float
) -> tuple[int, dict[str, Any]]:
    resp = await client.get(url, headers=headers, timeout=timeout)
    try:
        body = resp.json()
    except ValueError:
        body = {}
    return resp.status_code, body if isinstance(body, dict) else {}


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


async def check_site(
    client: httpx.AsyncClient, name: str, url: str, secret: str, timeout: float
) -> SiteHealth:
    """Both checks at once; a timeout or refused connection is a failed check."""
    base = url.rstrip("/")
    auth = {"Authorization": f"Bearer {secret}"}
    ready_call = _get_json(client, f"{base}/readyz", {}, timeout)
    status_call = _get_json(client, f"{base}/replication/status", auth, timeout)
    results: tuple[tuple[int, dict[str, Any]] | BaseException, ...] = await asyncio.gather(
        ready_call, status_call, return_exceptions=True
    )
    ready_res, status_res = results
    if isinstance(ready_res, BaseException):
        return SiteHealth(
            name, False, False, error=f"{type(ready_res).__name__}: {ready_res}"[:200]
        )
    code, ready_body = ready_res
    status = (
        status_res[1]
        if not isinstance(status_res, BaseException) and status_res[0] == 200
        else None
    )
    src = status or ready_body
    lag = (status or {}).get("lag") or {}
    return SiteHealth(
        name=name,
        reachable=True,
        ready=code == 200,
        role=src.get("role") if isinstance(src.get("role"), str) else None,
        epoch=_int(src.get("epoch")),
        head_lsn=_int((status or {}).get("head_lsn")),
        applied_lsn=_int((status or {}).get("applied_lsn")),
        head_hash=(status or {}).get("head_hash"),
        lag_records=_int(lag.get("records")),
        lag_seconds=lag.get("seconds") if isinstance(lag.get("seconds"), int | float) else None,
        fenced=bool(status.get("fenced")) if status else None,
        problems=dict(ready_body.get("problems") or {}),
        warnings=dict(ready_body.get("warnings") or {}),
        public_url=_str((status or {}).get("public_url")),
        issuer_base=_str((status or {}).get("issuer_base")),
        status=status,
    )
