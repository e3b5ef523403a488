"""The kill-primary drill on a local cluster: seed data, run the workload through the
traffic layer (the builtin router or HAProxy), kill -9 the primary, let the controller
fail over, bring the old primary back (it rejoins as a standby), fail back gradually,
and measure what clients saw."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from standby.drills import measure
from standby.drills.local_cluster import LocalCluster
from standby.drills.processes import ProcessGroup, standby_argv
from standby.drills.workload import OidcClient, Workload, WorkloadConfig
from standby.httpclient import service_client

TENANT = "demo"
SETUP_TIMEOUT = 60.0  # bounds each wait for processes to get ready (generous: CI is shared)
Progress = Callable[[str], None]


class DrillError(RuntimeError):
    pass


async def wait_until(
    check: Callable[[], Awaitable[Any]], timeout: float, what: str, interval: float = 0.1
) -> Any:
    """Poll ``check`` until it returns something truthy; DrillError naming ``what`` if not."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        try:
            result = await check()
            if result:
                return result
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            last_error = f" (last error: {exc!r})"[:300]
        await asyncio.sleep(interval)
    raise DrillError(f"timed out after {timeout:.0f}s waiting for {what}{last_error}")


class Drill:
    def __init__(self, cluster: LocalCluster, group: ProcessGroup, progress: Progress) -> None:
        self.c = cluster
        self.group = group
        self.progress = progress
        self.admin = {"Authorization": f"Bearer {cluster.admin_token}"}
        self.repl = {"Authorization": f"Bearer {cluster.replication_secret}"}
        self.milestones: list[dict[str, Any]] = []
        self.http = service_client(timeout=5.0)

    def milestone(self, kind: str, **detail: Any) -> None:
        self.milestones.append(
            {"at": time.time(), "mono": time.monotonic(), "kind": kind, "source": "drill", **detail}
        )
        self.progress(kind.replace("_", " ") + (f" {detail}" if detail else ""))

    # -- processes ---------------------------------------------------------------------

    def start_site(self, name: str) -> None:
        argv = standby_argv("serve", "--config", str(self.c.sites[name]))
        self.group.start(name, argv, f"{self.c.urls[name]}/healthz")

    def start_all(self) -> None:
        for name in (self.c.primary, self.c.standby):
            self.start_site(name)
        topo = str(self.c.topology)
        self.group.start(
            "controller",
            standby_argv("controller", "--topology", topo),
            f"{self.c.controller_url}/status",
        )
        if self.c.traffic == "haproxy":
            binary, config = shutil.which("haproxy"), self.c.haproxy_config
            if binary is None or config is None:
                raise DrillError("haproxy is not installed (Debian: apt-get install haproxy)")
            # Started after the controller, which corrects it on its next tick (either
            # order works); ready once it answers through a site (<500).
            self.group.start(
                "haproxy", [binary, "-db", "-f", str(config)], f"{self.c.router_url}/readyz"
            )
        else:
            self.group.start(
                "router",
                standby_argv("router", "--topology", topo),
                f"{self.c.router_url}/_router/status",
            )
        self.milestone("processes_started", pids={n: m.pid for n, m in self.group.procs.items()})

    # -- observations ------------------------------------------------------------------

    async def controller_status(self) -> dict[str, Any]:
        resp = await self.http.get(f"{self.c.controller_url}/status", headers=self.admin)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    async def controller_events(self) -> list[dict[str, Any]]:
        resp = await self.http.get(
            f"{self.c.controller_url}/events", headers=self.admin, params={"limit": 10000}
        )
        resp.raise_for_status()
        events: list[dict[str, Any]] = resp.json()["events"]
        return events

    async def replication_status(self, name: str) -> dict[str, Any]:
        resp = await self.http.get(f"{self.c.urls[name]}/replication/status", headers=self.repl)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    async def cluster_ready(self, primary: str) -> bool:
        status = await self.controller_status()
        traffic = status.get("traffic") or {}
        return bool(
            status.get("primary") == primary
            and traffic.get(primary) == 100
            and status.get("busy") is None
        )

    async def routable(self, name: str) -> bool:
        """The traffic layer's own check finds ``name`` ready and sends it traffic."""
        if self.c.traffic == "haproxy":
            from standby.cluster.traffic.haproxy import HaproxyBackend, HaproxyError

            assert self.c.haproxy_socket and self.c.haproxy_backend
            haproxy = HaproxyBackend(self.c.haproxy_socket, self.c.haproxy_backend)
            try:
                view = (await haproxy.servers())[name]
            except HaproxyError:
                return False
            return view.op == "up" and view.admin == "ready" and view.weight > 0
        resp = await self.http.get(f"{self.c.router_url}/_router/status", headers=self.admin)
        resp.raise_for_status()
        return bool(resp.json()["sites"][name]["healthy"])

    async def discovered_issuer(self) -> str:
        """The issuer a relying party finds through the traffic layer (OIDC discovery)."""

        async def issuer() -> str | None:
            resp = await self.http.get(
                f"{self.c.router_url}/t/{TENANT}/.well-known/openid-configuration"
            )
            return str(resp.json()["issuer"]) if resp.status_code == 200 else None

        found: str = await wait_until(issuer, SETUP_TIMEOUT, f"discovery through {self.c.layer}")
        return found

    async def standby_caught_up(self, primary: str, standby: str) -> bool:
        p, s = await asyncio.gather(
            self.replication_status(primary), self.replication_status(standby)
        )
        return bool(s["role"] == "standby" and s["applied_lsn"] >= p["head_lsn"])

    async def usernames(self, site: str) -> set[str]:
        names: set[str] = set()
        after: str | None = None
        for _ in range(1000):  # bounded paging
            params: dict[str, Any] = {"limit": 1000, **({"after": after} if after else {})}
            resp = await self.http.get(
                f"{self.c.urls[site]}/admin/tenants/{TENANT}/users",
                params=params,
                headers=self.admin,
            )
            resp.raise_for_status()
            body = resp.json()
            names.update(u["username"] for u in body["users"])
            after = body.get("next")
            if not after:
                break
        return names

    # -- seed --------------------------------------------------------------------------

    async def seed(self, n_users: int) -> WorkloadConfig:
        """Tenant, users and an OIDC client, written on the primary directly (the router
        only sends traffic to a site whose deep health check passes, and a fresh primary
        makes its first signing key on the first token it issues)."""
        base = self.c.urls[self.c.primary]

        async def create_tenant() -> bool:
            resp = await self.http.post(
                f"{base}/admin/tenants",
                headers=self.admin,
                json={"id": TENANT, "name": "Standby demo"},
            )
            if resp.status_code in (200, 201):
                return True
            if resp.status_code == 503:  # no lease yet
                return False
            raise DrillError(f"creating the tenant failed: HTTP {resp.status_code} {resp.text}")

        await wait_until(create_tenant, SETUP_TIMEOUT, f"{self.c.primary} to accept writes")
        users = []
        for i in range(n_users):
            username, password = f"user{i:03d}", secrets.token_urlsafe(12)
            resp = await self.http.post(
                f"{base}/admin/tenants/{TENANT}/users",
                headers=self.admin,
                json={"username": username, "password": password},
            )
            if resp.status_code not in (200, 201):
                raise DrillError(f"creating {username} failed: HTTP {resp.status_code} {resp.text}")
            users.append((username, password))
        client = None
        resp = await self.http.post(
            f"{base}/admin/tenants/{TENANT}/clients",
            headers=self.admin,
            json={
                "name": "demo-app",
                "redirect_uris": ["http://127.0.0.1/callback"],
                "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                "scopes": ["openid", "profile", "offline_access"],
                "token_endpoint_auth_method": "client_secret_basic",
                # the workload signs in without a browser: no consent page for it
                "first_party": True,
            },
        )
        if resp.status_code in (200, 201):
            body = resp.json()
            client = OidcClient(
                str(body.get("client_id") or body["id"]),
                body["client_secret"],
                "http://127.0.0.1/callback",
            )
        if client is not None:
            await self.http.post(
                f"{base}/t/{TENANT}/token",
                data={"grant_type": "client_credentials"},
                auth=(client.client_id, client.client_secret),
            )
        self.milestone("seeded", users=n_users, oidc_client=client is not None)
        return WorkloadConfig(self.c.router_url, TENANT, self.c.admin_token, users, client)

    # -- the drill ---------------------------------------------------------------------

    async def run(
        self,
        *,
        users: int = 12,
        warmup: float = 3.0,
        settle: float = 2.0,
        failover_timeout: float = 30.0,
        concurrency: int = 4,
    ) -> dict[str, Any]:
        c = self.c
        await wait_until(
            lambda: self.cluster_ready(c.primary),
            SETUP_TIMEOUT,
            f"the controller to route traffic to {c.primary}",
        )
        self.milestone("cluster_ready", primary=c.primary)
        config = await self.seed(users)
        config.concurrency = concurrency
        await wait_until(
            lambda: self.standby_caught_up(c.primary, c.standby),
            SETUP_TIMEOUT,
            f"{c.standby} to catch up with {c.primary}",
        )
        await wait_until(
            lambda: self.routable(c.primary),
            SETUP_TIMEOUT,
            f"{c.layer} to find {c.primary} ready (GET /readyz)",
        )
        issuers = {"before_failover": await self.discovered_issuer()}
        load = Workload(config)
        grant_note = await load.prepare_tokens()
        self.milestone("workload_started", concurrency=concurrency, token_requests=load.grant_mode)

        stop = asyncio.Event()
        running = asyncio.create_task(load.run(stop, max_seconds=failover_timeout + 60))
        try:
            await asyncio.sleep(warmup)
            fault_mono, fault_wall = time.monotonic(), time.time()
            self.group.procs[c.primary].kill9()
            self.milestone("fault_kill9", site=c.primary)
            await wait_until(
                lambda: self._promoted(c.standby),
                failover_timeout,
                f"the controller to promote {c.standby}",
                interval=0.05,
            )
            self.milestone("failover_seen", new_primary=c.standby)
            await wait_until(
                lambda: self._login_after(load, fault_mono),
                failover_timeout,
                f"a successful login through {c.layer} after the fault",
                interval=0.05,
            )
            self.milestone("first_login_after_fault")
            await asyncio.sleep(settle)
        finally:
            stop.set()
            await running
        issuers["after_failover"] = await self.discovered_issuer()
        failover_acks = list(load.acks)
        present = await self.usernames(c.standby)
        measured = measure.summarize(failover_acks, present, fault_mono)
        self.milestone(
            "failover_measured", rto_s=measured["rto_s"], rpo_lost=measured["rpo"]["lost"]
        )

        failback = await self.fail_back(load, fault_mono)
        issuers["after_failback"] = await self.discovered_issuer()
        events = await self.controller_events()
        return {
            "issuer": {
                "public_url": c.router_url,
                **issuers,
                "same": len(set(issuers.values())) == 1,
            },
            "measured": measured,
            "failback": failback,
            "fault": {"kind": "kill -9", "site": c.primary, "at": fault_wall},
            "workload": {
                "concurrency": concurrency,
                "users": users,
                "token_requests": grant_note,
                "requests": len(load.acks),
            },
            "timeline": (rows := timeline(events, self.milestones, fault_wall)),
            "phases": phases(rows, measured["rto_s"]),
            "acks": [a.to_dict() for a in load.acks],
        }

    async def _promoted(self, name: str) -> bool:
        status = await self.controller_status()
        return bool(status.get("primary") == name and (status.get("epoch") or 0) > 1)

    async def _login_after(self, load: Workload, fault_mono: float) -> bool:
        return measure.rto(load.acks, fault_mono) is not None

    async def fail_back(self, load: Workload, fault_mono: float) -> dict[str, Any]:
        c = self.c
        self.start_site(c.primary)
        self.milestone("old_primary_restarted", site=c.primary)

        async def rejoined() -> bool:
            status = await self.controller_status()
            mine = next(s for s in status["sites"] if s.get("name") == c.primary)
            return bool(
                mine.get("role") == "standby"
                and c.primary not in status["pending_rejoin"]
                and await self.standby_caught_up(c.standby, c.primary)
            )

        await wait_until(rejoined, 60, f"{c.primary} to rejoin as a standby of {c.standby}")
        self.milestone("old_primary_rejoined", site=c.primary)
        before = len(load.acks)
        stop = asyncio.Event()
        load.config.write_prefix = "fb"
        running = asyncio.create_task(load.run(stop, max_seconds=120))
        started = time.monotonic()
        try:
            resp = await self.http.post(
                f"{c.controller_url}/failback",
                headers=self.admin,
                json={"to": c.primary},
                timeout=120,
            )
        finally:
            stop.set()
            await running
        took = time.monotonic() - started
        if resp.status_code != 200:
            raise DrillError(
                f"failback to {c.primary} failed: HTTP {resp.status_code} {resp.text[:500]}"
            )
        self.milestone("failback_done", site=c.primary, seconds=round(took, 3))
        await wait_until(
            lambda: self.cluster_ready(c.primary), SETUP_TIMEOUT, f"all traffic back on {c.primary}"
        )
        acks = load.acks[before:]
        present = await self.usernames(c.primary)
        lost = measure.rpo(acks, present, started)
        return {
            "seconds": took,
            "controller": resp.json(),
            "requests": len(acks),
            "failed": sum(not a.ok for a in acks),
            "errors": measure.errors_by_kind(acks),
            "lost_writes": lost["lost"],
            "acknowledged_writes": lost["acknowledged_writes"],
            "dual_primaries": measure.dual_primaries(acks),
        }

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.http.aclose()


def timeline(
    events: list[dict[str, Any]], milestones: list[dict[str, Any]], fault_wall: float
) -> list[dict[str, Any]]:
    """Controller events and drill milestones on one axis: seconds from the fault."""
    rows = [
        {**e, "source": "controller"}
        for e in events
        if e.get("kind") not in ("lease_granted", "lease_renewed", "health")
    ]
    rows += [{k: v for k, v in m.items() if k != "mono"} for m in milestones]
    for r in rows:
        r["t"] = round(float(r["at"]) - fault_wall, 3)
    return sorted(rows, key=lambda r: r["t"])


def phases(rows: list[dict[str, Any]], rto_s: float | None) -> dict[str, float | None]:
    """Where the RTO went: detection, promotion, and traffic until a login succeeded
    (seconds; None when the step is not in the timeline)."""

    def first(source: str, kind: str) -> float | None:
        return next(
            (
                float(r["t"])
                for r in rows
                if r.get("source") == source and r.get("kind") == kind and r["t"] >= 0
            ),
            None,
        )

    down = first("controller", "site_down")
    promoted = first("controller", "promoted")
    return {
        "detected_s": down,
        "promoted_s": promoted,
        "detect_to_promote_s": None if down is None or promoted is None else promoted - down,
        "promote_to_first_login_s": None if promoted is None or rto_s is None else rto_s - promoted,
    }
