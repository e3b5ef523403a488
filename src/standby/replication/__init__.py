"""Replication: the primary's change stream, the standby's applier, sync mode, epochs,
fencing, rejoin with quarantine. ``mount(app, site)`` plugs it into a site."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from standby.server import Site


def mount(app: FastAPI, site: Site) -> None:
    from standby.replication import applier, control, fencing, issuer_match, routes, stream
    from standby.replication.state import state_of
    from standby.replication.status import ReplicationCollector
    from standby.replication.sync import SyncGate, standby_attached

    state = state_of(site)
    cfg = site.settings.replication
    state.gate = SyncGate(
        site.name,
        cfg.sync_timeout,
        cfg.strict,
        cfg.mode == "sync",
        attached=lambda: standby_attached(
            ((p.connected, p.acked_at) for p in state.peers.values() if p.tenants is None),
            time.time(),
            cfg.sync_timeout,
        ),
    )
    fencing.load(site)
    followed = site.store.get_meta("primary_url")
    if followed and site.role == "standby":
        cfg.primary_url = followed  # set by /replication/follow; outlives the config file
    # Wake streams first, then wait for the standby (sync): the order matters.
    site.store.commit_hooks.insert(0, lambda _records: state.signal.notify())
    site.store.commit_hooks.append(state.gate.commit_hook)
    site.write_guards.append(lambda: fencing.guard(site))
    site.write_guards.append(state.gate.guard)
    site.metrics.registry.register(ReplicationCollector(site))
    site.readiness["issuer"] = lambda: issuer_match.mismatch(site)
    site.background.append(applier.run)
    if cfg.forward_writes:
        from standby.replication.client import primary_url
        from standby.replication.forward import WriteForwarding

        app.add_middleware(WriteForwarding, site=site, primary=lambda: primary_url(site))

    from standby.openapi import errors

    def add(path: str, endpoint: Any, method: str, *codes: int) -> None:
        # ``codes``: what the route answers besides success (for the API document).
        app.add_api_route(path, endpoint, methods=[method], responses=errors(401, *codes))

    add("/replication/stream", stream.stream, "GET", 400, 409, 410, 503)
    add("/replication/ack", routes.ack, "POST", 400, 409)
    add("/replication/status", routes.status, "GET")
    add("/replication/timeline", routes.timeline, "GET")
    add("/replication/reapply", routes.reapply_records, "POST", 400, 409, 503)
    add("/replication/promote", control.promote, "POST", 400, 409)
    add("/replication/demote", control.demote, "POST", 400, 409)
    add("/replication/follow", control.follow, "POST", 400, 409, 502)
