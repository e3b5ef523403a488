"""The etcd DCS: etcd v3 through its HTTP/JSON gateway (kv/range, kv/txn, lease/*).

Keys and values travel base64-encoded; int64 fields come back as strings. The leader
key changes only in a transaction comparing its mod revision (compare-and-swap). etcd
rounds lease TTLs up to whole seconds and enforces its own minimum, so a lease here
lasts at least the TTL asked for — never less, which is the safe direction.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import httpx

from standby.cluster.dcs.base import Dcs, DcsError, Leader
from standby.httpclient import service_client


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode()


class EtcdDcs(Dcs):
    def __init__(self, endpoints: list[str], prefix: str = "/standby", timeout: float = 1.0):
        if not endpoints:
            raise DcsError("dcs.endpoints: name at least one etcd endpoint")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.prefix = prefix.rstrip("/")
        self._client = service_client(timeout=timeout)
        self._leader_key = _b64(f"{self.prefix}/leader")

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        errors = []
        for endpoint in self.endpoints:
            try:
                resp = await self._client.post(f"{endpoint}{path}", json=body)
            except httpx.HTTPError as exc:
                errors.append(f"{endpoint}: {exc.__class__.__name__}")
                continue
            data: dict[str, Any] = resp.json()
            if resp.status_code != 200:
                # Answers about an unknown lease are results, not outages.
                if "lease not found" in str(data.get("error", "")):
                    return {"not_found": True}
                raise DcsError(f"etcd {path}: {data.get('error') or resp.status_code}")
            return data
        raise DcsError(f"etcd unreachable: {'; '.join(errors)}")

    async def get_leader(self) -> Leader | None:
        data = await self._call("/v3/kv/range", {"key": self._leader_key})
        kvs = data.get("kvs") or []
        if not kvs:
            return None
        value = json.loads(_unb64(kvs[0]["value"]))
        return Leader(str(value["primary"]), int(value["epoch"]), int(kvs[0]["mod_revision"]))

    async def put_leader(
        self, primary: str, epoch: int, *, expected_revision: int
    ) -> Leader | None:
        if expected_revision == 0:
            compare = {"target": "CREATE", "result": "EQUAL", "create_revision": "0"}
        else:
            compare = {"target": "MOD", "result": "EQUAL", "mod_revision": str(expected_revision)}
        value = _b64(json.dumps({"primary": primary, "epoch": epoch}))
        data = await self._call(
            "/v3/kv/txn",
            {
                "compare": [{"key": self._leader_key, **compare}],
                "success": [{"request_put": {"key": self._leader_key, "value": value}}],
            },
        )
        if not data.get("succeeded"):
            return None
        return Leader(primary, epoch, int(data["header"]["revision"]))

    async def lease_grant(self, holder: str, ttl: float) -> str:
        data = await self._call("/v3/lease/grant", {"TTL": str(max(1, math.ceil(ttl)))})
        lease_id = str(data["ID"])
        await self._call(
            "/v3/kv/put",
            {
                "key": _b64(f"{self.prefix}/lease/{holder}"),
                "value": _b64(holder),
                "lease": lease_id,
            },
        )
        return lease_id

    async def lease_renew(self, lease_id: str) -> bool:
        data = await self._call("/v3/lease/keepalive", {"ID": lease_id})
        result = data.get("result") or {}
        return int(result.get("TTL", 0)) > 0

    async def lease_remaining(self, lease_id: str) -> float | None:
        data = await self._call("/v3/lease/timetolive", {"ID": lease_id})
        if data.get("not_found"):
            return None
        # Whole seconds; the JSON gateway omits a zero field: absent/0 means "under a
        # second left", -1 means gone.
        ttl = int(data.get("TTL", 0))
        return float(ttl) if ttl >= 0 else None

    async def lease_revoke(self, lease_id: str) -> None:
        await self._call("/v3/lease/revoke", {"ID": lease_id})

    async def close(self) -> None:
        await self._client.aclose()
