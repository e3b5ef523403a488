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
