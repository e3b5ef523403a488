"""Replication test support: a site process that also takes raw store writes over HTTP.

Until the admin API is there, the workload needs a way to make a *running* primary
write (so its commit hooks — stream wake-up, sync waits — fire in that process).
`python -m tests.support.replication --config X` runs the real site app (build_site +
every part's routes, exactly what `standby serve` runs) plus one workload route,
``POST /_workload/write``, that performs the given row changes in one store.write().
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.sites import SiteProcess, load_site


def workload_app(config: Path) -> Any:
    from fastapi import Body

    from standby.server import build_site

    settings, secrets = load_site(config)
    site, app = build_site(settings, secrets)

    def write(ops: list[dict[str, Any]] = Body(embed=True)) -> dict[str, Any]:  # noqa: B008
        with site.store.write() as w:
            for op in ops:
                if op["op"] == "insert":
                    w.insert(op["entity"], op["row"])
                elif op["op"] == "update":
                    w.update(op["entity"], op["key"], op["changes"])
                else:
                    w.delete(op["entity"], op["key"])
        lsn = w.records[-1].lsn if w.records else site.store.head().lsn
        return {"lsn": lsn, "epoch": w.epoch, "site": site.name, "at": time.time()}

    app.add_api_route("/_workload/write", write, methods=["POST"])
    return app


class WorkloadSite(SiteProcess):
    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(config, env)
        self.argv = [sys.executable, "-m", "tests.support.replication", "--config", str(config)]


def rep_headers(secret: str, epoch: int | None = None) -> dict[str, str]:
    h = {"Authorization": f"Bearer {secret}"}
    if epoch is not None:
        h["Standby-Epoch"] = str(epoch)
    return h


def wait_for(check: Any, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll ``check()`` until it returns something truthy; bounded in time."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except httpx.HTTPError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s (last: {last!r})")


def main() -> None:
    import uvicorn

    config = Path(sys.argv[sys.argv.index("--config") + 1])
    settings, _ = load_site(config)
    logging.basicConfig(level="INFO", format="%(message)s")
    uvicorn.run(
        workload_app(config),
        host=settings.http.host,
        port=settings.http.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()


# ---------------------------------------------------------------- pairs of sites


def two_store_urls(kind: str, tmp_path: Path, postgres: Any | None) -> list[str]:
    """Two empty stores of one kind (a primary's and a standby's)."""
    if kind == "sqlite":
        return [f"sqlite:///{tmp_path / f'store-{i}.db'}" for i in range(2)]
    assert postgres is not None
    return [postgres.url(postgres.create_database()) for _ in range(2)]


def write_pair(
    root: Path,
    urls: list[str],
    *,
    replication: dict[str, Any] | None = None,
    standby_replication: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Configs for primary site-a and its standby site-b (same secrets)."""
    from tests.support.postgres import free_port
    from tests.support.sites import make_site_dir

    port = free_port()
    primary = make_site_dir(
        root, "site-a", port=port, store_url=urls[0], extra={"replication": replication or {}}
    )
    standby = make_site_dir(
        root,
        "site-b",
        store_url=urls[1],
        role="standby",
        secrets_from=primary.parent / "secrets.yaml",
        extra={
            "replication": {
                **(replication or {}),
                "primary_url": f"http://127.0.0.1:{port}",
                **(standby_replication or {}),
            }
        },
    )
    return primary, standby


def secret_of(config: Path) -> str:
    _, secrets = load_site(config)
    return str(secrets.replication_secret.get_secret_value())


def write(url: str, ops: list[dict[str, Any]], timeout: float = 10.0) -> httpx.Response:
    return httpx.post(f"{url}/_workload/write", json={"ops": ops}, timeout=timeout)


def tenant_op(tid: str) -> dict[str, Any]:
    row = {"id": tid, "tenant": tid, "name": tid, "created_at": 1}
    return {"op": "insert", "entity": "tenants", "row": row}


def user_op(uid: str, tenant: str = "t1", **cols: Any) -> dict[str, Any]:
    row = {"id": uid, "tenant": tenant, "username": uid, "created_at": 1, "updated_at": 1, **cols}
    return {"op": "insert", "entity": "users", "row": row}


def snapshot(url: str, site: str, tenants: list[str] | None = None) -> dict[str, list[Any]]:
    """Every replicated row of a store, table by table, in id order."""
    from sqlalchemy import select

    from standby.store import Store
    from standby.store.schema import REPLICATED_TABLES

    store = Store(url, site)
    try:
        out: dict[str, list[Any]] = {}
        with store.read() as conn:
            for name, table in REPLICATED_TABLES.items():
                q = select(table).order_by(table.c.id)
                if tenants is not None:
                    q = q.where(table.c.tenant.in_(tenants) | table.c.tenant.is_(None))
                out[name] = [tuple(r) for r in conn.execute(q)]
        return out
    finally:
        store.close()


def rows_by_id(url: str, site: str, table: str) -> dict[str, dict[str, Any]]:
    from sqlalchemy import select

    from standby.store import Store
    from standby.store.schema import REPLICATED_TABLES

    store = Store(url, site)
    try:
        with store.read() as conn:
            rows = conn.execute(select(REPLICATED_TABLES[table])).mappings()
            return {r["id"]: dict(r) for r in rows}
    finally:
        store.close()


def status(url: str, secret: str) -> dict[str, Any]:
    resp = httpx.get(f"{url}/replication/status", headers=rep_headers(secret), timeout=5.0)
    resp.raise_for_status()
    data: dict[str, Any] = resp.json()
    return data


def caught_up(url: str, secret: str, lsn: int) -> bool:
    s = status(url, secret)
    return bool(s["position"] >= lsn and s["applied_lsn"] >= 0)
