"""The controller loop: observe every site -> ``decision.decide`` -> carry the action out.

Each decision that changes and each action is an event (``events.py``). The lease the
primary renews is granted here and counted on this process's monotonic clock from the
moment of the grant; promotion waits until it has certainly expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import httpx

from standby.cluster import decision as d
from standby.cluster import issuers
from standby.cluster.dcs import Dcs, DcsError, Leader
from standby.cluster.detector import Detector
from standby.cluster.events import EventLog
from standby.cluster.health import SiteHealth, check_site
from standby.cluster.topology import ClusterSecrets, Topology
from standby.cluster.traffic import TrafficBackend, make_backend
from standby.cluster.traffic import state as ts
from standby.cluster.traffic.weights import initial_weights
from standby.httpclient import service_client

# A switchover waits this long at most for requests already sent to finish before it
# fences the primary (identity requests take milliseconds; new ones are held meanwhile).
DRAIN_WAIT_S = 1.0
DRAIN_STEP_S = 0.02


class ControllerError(Exception):
    """An operator command cannot be carried out; the message says why and what to do."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class LeaseBook:
    holder: str
    epoch: int
    granted_at: float  # controller monotonic time of the last grant
    dcs_lease: str | None = None
    renewed_since_tick: bool = False


def make_traffic(topo: Topology, secrets: ClusterSecrets) -> TrafficBackend:
    """The traffic backend the topology names (builtin router or HAProxy)."""
    return make_backend(topo, secrets)


class Controller:
    def __init__(
        self,
        topo: Topology,
        secrets: ClusterSecrets,
        dcs: Dcs,
        *,
        events: EventLog | None = None,
        traffic: TrafficBackend | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topo = topo
        self.cfg = topo.controller
        self.secret = secrets.replication_secret.get_secret_value()
        self.dcs = dcs
        self.events = events or EventLog(None)
        self.traffic = traffic
        self.clock = clock
        self.client = service_client()
        self.detectors = {
            s.name: Detector(threshold=self.cfg.failure_threshold) for s in topo.sites
        }
        self.health: dict[str, SiteHealth] = {}
        self.leader: Leader | None = None
        self.lease: LeaseBook | None = None
        self.failover: d.Failover | None = None
        self.awaiting: str | None = None
        self.approved = False
        self.pending_rejoin: set[str] = set()
        self.servers: dict[str, ts.ServerView] | None = None  # the backend's view, last tick
        self.applied: dict[str, ts.ServerView] = {}  # what this controller last set
        self._drift: dict[str, ts.ServerView] = {}  # drift already reported, per site
        self.desired_weights: dict[str, int] | None = None
        self.busy: str | None = None
        self.no_lease_for: str | None = None  # the primary a switchover is moving away from
        self.ramp: dict[str, Any] | None = None
        self._last_decision: tuple[str, str] | None = None
        self._traffic_error: str | None = None
        self._op_lock = asyncio.Lock()

    # ------------------------------------------------------------------ start
    async def start(self) -> None:
        leader = await self.dcs.get_leader()
        if leader is None:
            primary = next(s.name for s in self.topo.sites if s.role == "primary")
            epochs = [h.epoch for h in await self._check_all() if h.epoch]
            leader = await self.dcs.put_leader(primary, max(epochs, default=1), expected_revision=0)
            if leader is None:  # another controller initialised it first
                leader = await self.dcs.get_leader()
            assert leader is not None
        self.leader = leader
        # A lease granted by a previous run may still be out: count it from now.
        self.lease = LeaseBook(leader.primary, leader.epoch, self.clock())
        if self.traffic is None:
            self.events.append(
                "traffic_unavailable", detail="no traffic backend; weights not moved"
            )
        else:
            # What the DCS says, from the start: a traffic layer started from a stale
            # config is corrected now, and later changes by others are seen as drift.
            await self.move_traffic(
                initial_weights(leader.primary, [s.name for s in self.topo.sites])
            )
        self.events.append(
            "controller_started",
            primary=leader.primary,
            epoch=leader.epoch,
            mode=self.cfg.failover,
            dcs=self.cfg.dcs.backend,
        )

    async def close(self) -> None:
        await self.client.aclose()
        await self.dcs.close()

    # ------------------------------------------------------------------ lease
    def lease_expires_at(self) -> float:
        assert self.lease is not None
        return self.lease.granted_at + self.cfg.lease_ttl + self.cfg.safety_margin

    def renew(self, site: str, epoch: int) -> dict[str, Any]:
        """A primary's renewal; granted only to the DCS primary on the DCS epoch."""
        leader, lease = self.leader, self.lease
        ttl = self.cfg.lease_ttl
        if leader is None or lease is None:
            return {"granted": False, "ttl": ttl, "epoch": 0, "message": "controller starting"}
        why = None
        if site != leader.primary:
            why = f"{site} is not the primary ({leader.primary} is, epoch {leader.epoch})"
        elif epoch != leader.epoch:
            why = f"epoch {epoch} is not the current epoch {leader.epoch}"
        elif self.failover is not None and site == self.failover.old_primary:
            why = f"failover from {site} in progress: {self.failover.reason}"
        elif site == self.no_lease_for:
            why = f"{self.busy} in progress"
        if why:
            return {
                "granted": False,
                "ttl": ttl,
                "epoch": leader.epoch,
                "primary": leader.primary,
                "message": why,
            }
        if lease.holder != site or lease.epoch != epoch:
            self.lease = lease = LeaseBook(site, epoch, self.clock())
        lease.granted_at = self.clock()
        lease.renewed_since_tick = True
        return {"granted": True, "ttl": ttl, "epoch": leader.epoch, "primary": leader.primary}

    async def _mirror_lease(self) -> None:
        """Keep the DCS's view of the lease in step (for status and other controllers)."""
        lease = self.lease
        if lease is None or not lease.renewed_since_tick:
            return
        lease.renewed_since_tick = False
        with contextlib.suppress(DcsError, httpx.HTTPError):
            if lease.dcs_lease is None or not await self.dcs.lease_renew(lease.dcs_lease):
                lease.dcs_lease = await self.dcs.lease_grant(lease.holder, self.cfg.lease_ttl)

    # ------------------------------------------------------------------ observe
    async def _check_all(self) -> list[SiteHealth]:
        return list(
            await asyncio.gather(
                *(
                    check_site(self.client, s.name, s.url, self.secret, self.cfg.check_timeout)
                    for s in self.topo.sites
                )
            )
        )

    @property
    def weights(self) -> dict[str, int] | None:
        if self.servers is None:
            return None
        return {name: view.weight for name, view in self.servers.items()}

    async def observe(self) -> None:
        checks = self._check_all()
        traffic = self._read_traffic()
        results, _ = await asyncio.gather(checks, traffic)
        for h in results:
            before = self.detectors[h.name]
            after = before.observe(h.reachable and h.ready)
            self.detectors[h.name] = after
            self.health[h.name] = h
            if after.down != before.down:
                self.events.append(
                    "site_down" if after.down else "site_up",
                    site=h.name,
                    failures=after.failures,
                    error=h.error,
                    problems=h.problems,
                )
        await self._mirror_lease()

    async def _read_traffic(self) -> None:
        if self.traffic is None:
            return
        try:
            self.servers = await asyncio.wait_for(self.traffic.servers(), self.cfg.check_timeout)
        except Exception as exc:  # noqa: BLE001 - a router hiccup must not stop the loop
            self.servers = None
            self._traffic_problem(exc)
            return
        self._report_drift(self.servers)
        missing = ts.unknown(self.applied, self.servers)
        if missing:  # its config names other servers: nothing the controller can set
            self._traffic_problem(
                LookupError(f"the traffic backend has no server for {', '.join(missing)}")
            )
        else:
            self._traffic_error = None

    def _traffic_problem(self, exc: Exception, **detail: Any) -> None:
        error = f"{type(exc).__name__}: {exc}"[:200]
        if error != self._traffic_error:  # once per distinct problem, not every tick
            self._traffic_error = error
            self.events.append("traffic_error", error=error, **detail)

    def _report_drift(self, seen: dict[str, ts.ServerView]) -> None:
        """An event for each server someone else changed (an operator on the admin
        socket, a restarted HAProxy): once per finding; the decision puts it back."""
        drift = ts.drifted(self.applied, seen)
        for site, (mine, found) in drift.items():
            if self._drift.get(site) != found:
                self._drift[site] = found
                self.events.append(
                    "traffic_drift",
                    site=site,
                    set_weight=mine.weight,
                    set_state=mine.admin,
                    found_weight=found.weight,
                    found_state=found.admin,
                    found_health=found.op,
                )
        for site in set(self._drift) - set(drift):
            del self._drift[site]

    def observed(self) -> d.Observed:
        assert self.leader is not None
        sites = []
        for s in self.topo.sites:
            h = self.health.get(s.name)
            det = self.detectors[s.name]
            sites.append(
                d.SiteState(
                    name=s.name,
                    up=not det.down,  # the detector's threshold, never a single miss
                    ready=bool(h and h.ready),
                    role=h.role if h else None,
                    epoch=h.epoch if h else None,
                    lag_records=h.lag_records if h else None,
                )
            )
        return d.Observed(
            now=self.clock(),
            primary=self.leader.primary,
            epoch=self.leader.epoch,
            mode=self.cfg.failover,
            sites=tuple(sites),
            lease_expires_at=self.lease_expires_at(),
            failover=self.failover,
            awaiting_approval=self.awaiting,
            approved=self.approved,
            pending_rejoin=frozenset(self.pending_rejoin),
            # While a failback ramp runs, it alone moves traffic (the loop would only
            # repeat its step from a read that predates it).
            traffic=None if self.ramp and self.ramp.get("state") == "running" else self.servers,
            desired_weights=self.desired_weights,
            busy=self.busy is not None,
        )

    # ------------------------------------------------------------------ loop
    async def tick(self) -> d.Action:
        await self.observe()
        if self._op_lock.locked():
            # A switchover carries its own steps out, its promotion included: the loop
            # acting on the promotion it records would promote again and move all the
            # traffic at once, ahead of a failback's ramp. It observes only (the ramp's
            # health gates read what it sees) and takes over if the procedure fails.
            return d.Hold("an operator procedure is running")
        action: d.Action = d.Hold("no decision")
        for _ in range(6):  # a few quick steps per tick; every loop bounded
            action = d.decide(self.observed())
            key = (action.kind, _describe(action))
            if key != self._last_decision:
                self._last_decision = key
                self.events.append("decision", action=action.kind, **_fields(action))
            await self.act(action)
            # Go on within the tick only where the next step needs no fresh observation.
            if not isinstance(action, d.StartFailover | d.AbortFailover | d.Prepare):
                break
        return action

    async def run(self) -> None:
        interval = self.cfg.check_interval
        while True:
            started = self.clock()
            try:
                action = await self.tick()
            except Exception as exc:  # noqa: BLE001 - the loop logs and carries on
                self.events.append("controller_error", error=f"{type(exc).__name__}: {exc}"[:300])
                action = d.Hold("error")
            wake = started + interval
            if isinstance(action, d.Wait):
                wake = min(wake, action.until)
            await asyncio.sleep(max(0.0, wake - self.clock()))

    # ------------------------------------------------------------------ act
    async def act(self, action: d.Action) -> None:
        if isinstance(action, d.AwaitApproval):
            if self.awaiting != action.target:
                self.awaiting = action.target
                self.events.append("awaiting_approval", target=action.target, reason=action.reason)
        elif isinstance(action, d.CancelApproval):
            self.awaiting, self.approved = None, False
            self.events.append("approval_cancelled", reason=action.reason)
        elif isinstance(action, d.StartFailover):
            await self._start_failover(action)
        elif isinstance(action, d.AbortFailover):
            self.failover = None
            self.events.append("failover_aborted", reason=action.reason)
        elif isinstance(action, d.Prepare):
            await self._prepare(action)
        elif isinstance(action, d.Promote):
            await self._promote(action)
        elif isinstance(action, d.Rejoin):
            await self._rejoin(action)
        elif isinstance(action, d.SetWeights):
            await self.move_traffic(dict(action.weights))

    async def _start_failover(self, action: d.StartFailover) -> None:
        self.awaiting, self.approved = None, False
        # From here no renewal is granted; the lease can only run out.
        self.failover = d.Failover(
            action.target, action.old_primary, action.reason, "revoked", self.lease_expires_at()
        )
        self.events.append(
            "failover_started",
            target=action.target,
            old_primary=action.old_primary,
            reason=action.reason,
            lease_expires_in=round(self.lease_expires_at() - self.clock(), 3),
        )
        lease = self.lease
        if lease is not None and lease.dcs_lease is not None:
            with contextlib.suppress(DcsError, httpx.HTTPError):
                await self.dcs.lease_revoke(lease.dcs_lease)
            lease.dcs_lease = None

    def _url(self, name: str) -> str:
        return self.topo.site(name).url.rstrip("/")

    async def _site_post(
        self, name: str, path: str, body: dict[str, Any], timeout: float = 5.0
    ) -> dict[str, Any]:
        resp = await self.client.post(
            f"{self._url(name)}{path}",
            json=body,
            timeout=timeout,
            headers={"Authorization": f"Bearer {self.secret}"},
        )
        try:
            data: dict[str, Any] = resp.json()
        except ValueError:
            data = {}
        if resp.status_code != 200:
            raise ControllerError(
                f"{name} {path}: {resp.status_code} {data.get('error')}: {data.get('message')}"
            )
        return data

    async def _prepare(self, action: d.Prepare) -> None:
        fo = self.failover
        assert fo is not None and self.leader is not None
        try:
            answer = await self._site_post(
                action.target,
                "/cluster/prepare",
                {"epoch": self.leader.epoch + 1},
                timeout=self.cfg.check_timeout,
            )
        except (httpx.HTTPError, ControllerError) as exc:
            self.events.append("prepare_failed", target=action.target, error=str(exc)[:200])
            return
        ago = answer.get("last_confirmed_ago")
        now = self.clock()
        wait = d.failsafe_wait(
            None if ago is None else float(ago), self.cfg.lease_ttl, self.cfg.safety_margin
        )
        not_before = now + wait
        self.failover = replace(fo, phase="prepared", not_before=not_before)
        self.events.append(
            "prepared",
            target=action.target,
            last_confirmed_ago=ago,
            wait=round(not_before - now, 3),
        )

    async def _promote(self, action: d.Promote, move_traffic: bool = True) -> None:
        leader = self.leader
        assert leader is not None
        if action.epoch > leader.epoch:
            new = await self.dcs.put_leader(
                action.target, action.epoch, expected_revision=leader.revision
            )
            if new is None:
                self.leader = await self.dcs.get_leader()
                self.failover = None
                self.events.append("promotion_lost_race", target=action.target)
                return
            self.leader = new
            self.events.append("epoch_bumped", primary=action.target, epoch=action.epoch)
            fo = self.failover or d.Failover(
                action.target, action.old_primary, "promotion", "promoting", 0.0
            )
            self.failover = replace(fo, phase="promoting")
        try:
            result = await self._site_post(
                action.target,
                "/replication/promote",
                {"epoch": action.epoch, "reason": f"controller: {self._reason()}"},
            )
        except (httpx.HTTPError, ControllerError) as exc:
            self.events.append("promote_failed", target=action.target, error=str(exc)[:200])
            return
        self.failover = None
        self.lease = LeaseBook(action.target, action.epoch, self.clock())
        if action.old_primary:
            self.pending_rejoin.add(action.old_primary)
        self.events.append(
            "promoted", site=action.target, epoch=action.epoch, start_lsn=result.get("start_lsn")
        )
        if move_traffic:
            self.desired_weights = None
            self.ramp = None
            await self.move_traffic(d.target_weights(self.observed()))

    def _reason(self) -> str:
        return self.failover.reason if self.failover else (self.busy or "promotion")

    async def _rejoin(self, action: d.Rejoin) -> None:
        try:
            await self._site_post(
                action.site,
                "/replication/demote",
                {
                    "epoch": action.epoch,
                    "reason": f"{action.primary} is primary on epoch {action.epoch}",
                },
            )
            self.events.append("fenced", site=action.site, epoch=action.epoch)
            result = await self._site_post(
                action.site,
                "/replication/follow",
                {"primary_url": self._url(action.primary), "epoch": action.epoch},
                timeout=30.0,
            )
        except (httpx.HTTPError, ControllerError) as exc:
            self.events.append("rejoin_failed", site=action.site, error=str(exc)[:300])
            return
        self.pending_rejoin.discard(action.site)
        self.events.append(
            "rejoined",
            site=action.site,
            primary=action.primary,
            epoch=action.epoch,
            quarantine=result.get("quarantine"),
        )

    async def move_traffic(self, weights: dict[str, int]) -> None:
        """Bring the traffic backend to ``weights`` and the server states they imply, from
        a fresh read of it (``traffic.state.plan`` says what to change, in what order)."""
        if self.traffic is None:
            return
        try:
            seen = await asyncio.wait_for(self.traffic.servers(), self.cfg.check_timeout)
            changes = ts.plan(weights, seen)
            await self.traffic.apply(changes)
        except Exception as exc:  # noqa: BLE001 - reported; the next tick tries again
            self._traffic_problem(exc, weights=weights)
            return
        self.applied = ts.wanted(weights, self.traffic.states)
        self.servers = {
            name: replace(self.applied[name], op=view.op) if name in self.applied else view
            for name, view in seen.items()
        }
        self._drift.clear()
        if any(isinstance(c, ts.SetWeight) for c in changes):
            self.events.append("weights_set", weights=weights)
        for change in changes:
            if isinstance(change, ts.SetState):
                was = seen[change.site].admin
                self.events.append(
                    "server_state_set", site=change.site, state=change.state, was=was
                )

    # ------------------------------------------------------------------ operators
    async def approve(self) -> dict[str, Any]:
        if self.awaiting is None:
            raise ControllerError("no failover is awaiting approval")
        self.approved = True
        self.events.append("failover_approved", target=self.awaiting)
        return {"approved": True, "target": self.awaiting}

    async def _wait_status(
        self, name: str, done: Callable[[SiteHealth], bool], timeout: float, what: str
    ) -> SiteHealth:
        deadline = self.clock() + timeout
        while True:
            site = self.topo.site(name)
            h = await check_site(self.client, name, site.url, self.secret, self.cfg.check_timeout)
            if done(h):
                return h
            if self.clock() >= deadline:
                raise ControllerError(f"timed out after {timeout:.0f} s waiting for {what}")
            await asyncio.sleep(0.02)

    async def _head(self, name: str) -> tuple[int, str]:
        resp = await self.client.get(
            f"{self._url(name)}/cluster/lease",
            timeout=self.cfg.check_timeout * 4,
            headers={"Authorization": f"Bearer {self.secret}"},
        )
        body = resp.json()
        return int(body["head_lsn"]), str(body["head_hash"])

    async def switchover(
        self, to: str, *, keep_traffic: bool = False, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Planned: stop writes on the primary, wait for zero lag, check, promote ``to``."""
        async with self._op_lock:
            return await self._switchover(to, keep_traffic, timeout)

    def _check_target(self, to: str) -> Leader:
        """Refuse at once an order to move the primary role to ``to`` that cannot be
        carried out whatever happens next (unknown site, already primary, mid-failover)."""
        leader = self.leader
        assert leader is not None
        try:
            self.topo.site(to)
        except KeyError:
            raise ControllerError(f"unknown site {to!r}", 400) from None
        if to == leader.primary:
            raise ControllerError(f"{to} is already the primary (epoch {leader.epoch})")
        if self.failover is not None:
            raise ControllerError("a failover is in progress; try again when it is done")
        return leader

    async def _switchover(self, to: str, keep_traffic: bool, timeout: float) -> dict[str, Any]:
        leader = self._check_target(to)
        obs = self.observed()
        # A fresh look at the target: the last tick may predate its rejoin.
        h = await check_site(
            self.client, to, self.topo.site(to).url, self.secret, self.cfg.check_timeout
        )
        target = d.SiteState(to, not self.detectors[to].down, h.ready, h.role, h.epoch)
        if not d.is_candidate(target, obs):
            raise ControllerError(
                f"{to} is not a healthy standby on epoch {leader.epoch} (it reports role "
                f"{target.role}, epoch {target.epoch}, ready {target.ready})"
            )
        old, epoch, began = leader.primary, leader.epoch, self.clock()
        self.busy = f"switchover {old} -> {to}"
        self.no_lease_for = old
        self.events.append("switchover_started", old_primary=old, target=to, epoch=epoch)
        kept = dict(self.weights) if keep_traffic and self.weights else None
        held = await self._hold_traffic()
        try:
            demoted = await self._site_post(
                old, "/replication/demote", {"epoch": epoch, "reason": "switchover"}
            )
            head_lsn = int(demoted.get("head_lsn", 0))
            self.events.append("fenced", site=old, epoch=epoch, head_lsn=head_lsn)
            try:
                await self._wait_status(
                    to,
                    lambda h: (h.applied_lsn or 0) >= head_lsn,
                    timeout,
                    f"{to} to apply up to lsn {head_lsn}",
                )
                old_head, new_head = await asyncio.gather(self._head(old), self._head(to))
                if old_head != new_head:
                    raise ControllerError(
                        f"consistency check failed: {old} head {old_head}, {to} head {new_head}"
                    )
            except (ControllerError, httpx.HTTPError) as exc:
                # Undo: the old primary takes a new epoch and writes again.
                await self._promote(d.Promote(old, epoch + 1, ""))
                self.events.append("switchover_aborted", reason=str(exc)[:300])
                raise ControllerError(f"switchover aborted, {old} is primary again: {exc}") from exc
            self.events.append(
                "consistent", sites=[old, to], head_lsn=old_head[0], head_hash=old_head[1]
            )
            self.desired_weights = kept
            if not keep_traffic:
                self.ramp = None
            await self._promote(d.Promote(to, epoch + 1, ""), move_traffic=False)
            if self.leader is None or self.leader.primary != to or self.failover is not None:
                raise ControllerError(f"promotion of {to} did not complete; see events")
            await self._rejoin(d.Rejoin(old, to, epoch + 1))
        finally:
            if held:
                # Roles settled (or put back): traffic flows again, to the primary the DCS
                # names, or as it was for a failback's ramp to start from.
                await self.move_traffic(d.target_weights(self.observed()))
            self.busy = None
            self.no_lease_for = None
        took = self.clock() - began
        self.events.append(
            "switchover_done",
            old_primary=old,
            primary=to,
            epoch=epoch + 1,
            seconds=round(took, 3),
            head_lsn=head_lsn,
        )
        return {
            "old_primary": old,
            "primary": to,
            "epoch": epoch + 1,
            "seconds": round(took, 3),
            "head_lsn": head_lsn,
        }

    async def _hold_traffic(self) -> bool:
        """Send no new request to any site while the roles change, and wait (bounded) for
        those already sent: the traffic layer holds new requests (up to traffic.hold_s;
        HAProxy through the hold haproxy-config writes), so a write waits for the new
        primary instead of reaching a primary being fenced, whose refusal no site would
        resend. False (nothing held) without a traffic layer that holds."""
        if self.traffic is None or self.topo.traffic.hold_s <= 0:
            return False
        began = self.clock()
        await self.move_traffic({s.name: 0 for s in self.topo.sites})
        busy: dict[str, int] = {}
        # bounded by time, and by count (the sleep may be shorter than asked)
        for _ in range(int(DRAIN_WAIT_S / DRAIN_STEP_S) + 1):
            try:
                busy = {k: v for k, v in (await self.traffic.in_flight()).items() if v}
            except Exception as exc:  # noqa: BLE001 - reported; the switchover goes on
                self._traffic_problem(exc)
                break
            if not busy or self.clock() - began >= DRAIN_WAIT_S:
                break
            await asyncio.sleep(DRAIN_STEP_S)
        self.events.append("traffic_held", in_flight=busy, waited=round(self.clock() - began, 3))
        return True

    async def failback(self, to: str, *, timeout: float = 60.0) -> dict[str, Any]:
        """Catch up, check, switch over to ``to``, then ramp its traffic with health gates."""
        self._check_target(to)  # now, not after waiting for a catch-up that cannot come
        began = self.clock()
        self.events.append("failback_started", target=to)
        await self._wait_status(
            to,
            lambda h: h.role == "standby" and h.lag_records == 0 and h.ready,
            timeout,
            f"{to} to catch up (zero lag)",
        )
        result = await self.switchover(to, keep_traffic=True, timeout=timeout)
        others = [s.name for s in self.topo.sites if s.name != to]
        steps = list(self.cfg.ramp)
        index, verdict = 0, "next"
        self.ramp = {"site": to, "steps": steps, "percent": None, "state": "running"}
        for _ in range(len(steps) + 1):
            pct = steps[index]
            weights = d.ramp_weights(to, others, pct)
            self.desired_weights = weights
            self.ramp["percent"] = pct
            await self.move_traffic(weights)
            self.events.append("ramp_step", site=to, percent=pct)
            await asyncio.sleep(self.cfg.ramp_step_seconds)
            h = self.health.get(to)
            healthy = bool(h and h.ready and h.role == "primary" and not self.detectors[to].down)
            verdict, index = d.ramp_step(steps, index, healthy)
            if verdict != "next":
                break
        if verdict == "abort":
            good = steps[index] if index >= 0 else 0
            self.desired_weights = d.ramp_weights(to, others, good)
            await self.move_traffic(self.desired_weights)
            self.ramp = {"site": to, "steps": steps, "percent": good, "state": "aborted"}
            self.events.append("failback_aborted", site=to, held_percent=good)
        else:
            self.desired_weights = None
            self.ramp = {"site": to, "steps": steps, "percent": steps[-1], "state": "done"}
        took = self.clock() - began
        self.events.append(
            "failback_done", site=to, state=self.ramp["state"], seconds=round(took, 3)
        )
        return {**result, "ramp": self.ramp, "seconds": round(took, 3)}

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        leader, lease = self.leader, self.lease
        now = self.clock()
        sites = []
        for s in self.topo.sites:
            h = self.health.get(s.name)
            det = self.detectors[s.name]
            sites.append(
                {
                    **(h.to_dict() if h else {"name": s.name}),
                    "url": s.url,
                    "down": det.down,
                    "failures": det.failures,
                }
            )
        return {
            "cluster": self.topo.cluster,
            "primary": leader.primary if leader else None,
            "epoch": leader.epoch if leader else None,
            "mode": self.cfg.failover,
            "dcs": self.cfg.dcs.backend,
            "lease": None
            if lease is None
            else {
                "holder": lease.holder,
                "epoch": lease.epoch,
                "ttl": self.cfg.lease_ttl,
                "granted_ago": round(now - lease.granted_at, 3),
                "expires_in": round(self.lease_expires_at() - now, 3),
                "granting": self.failover is None and self.busy is None,
            },
            "sites": sites,
            "issuers": issuers.summarize(self.health.values()),
            "traffic": self.weights,
            "traffic_backend": self.topo.traffic.backend,
            "traffic_servers": None
            if self.servers is None
            else {name: asdict(view) for name, view in sorted(self.servers.items())},
            "failover": asdict(self.failover) if self.failover else None,
            "awaiting_approval": self.awaiting,
            "pending_rejoin": sorted(self.pending_rejoin),
            "busy": self.busy,
            "ramp": self.ramp,
            "events": self.events.last(20),
        }


def _fields(action: d.Action) -> dict[str, Any]:
    out = {k: v for k, v in asdict(action).items() if k != "kind"}
    if "weights" in out:
        out["weights"] = dict(out["weights"])
    return out


def _describe(action: d.Action) -> str:
    f = _fields(action)
    f.pop("until", None)
    return repr(sorted(f.items()))
