"""The controller's decision: a pure function from observed state to the next action.

Nothing here does I/O or reads a clock; ``controller.py`` observes, calls ``decide``,
and carries the action out. Failover runs as phases so every step can be replayed:

  primary down -> StartFailover (stop granting its lease)
    -> Wait until the lease has certainly expired (last grant + TTL + margin)
    -> Prepare (the standby stops confirming failsafe to the old primary; the
       controller then waits out any confirmation it already gave)
    -> Promote (epoch + 1 in the DCS, then the standby) -> SetWeights
  old primary back -> Rejoin (demote, follow the new primary).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from standby.cluster.traffic import state as traffic_state
from standby.cluster.traffic.state import ServerView

Mode = Literal["automatic", "approval"]


@dataclass(frozen=True)
class SiteState:
    name: str
    up: bool  # the detector's verdict (not declared down)
    ready: bool  # the last deep check passed
    role: str | None = None  # as the site reports it (None: unknown)
    epoch: int | None = None
    lag_records: int | None = None


@dataclass(frozen=True)
class Failover:
    target: str
    old_primary: str
    reason: str
    phase: Literal["revoked", "prepared", "promoting"]
    not_before: float  # controller monotonic seconds; the next step waits for it


@dataclass(frozen=True)
class Observed:
    now: float
    primary: str
    epoch: int
    mode: Mode
    sites: tuple[SiteState, ...]
    lease_expires_at: float  # last grant + TTL + safety margin (controller clock)
    failover: Failover | None = None
    awaiting_approval: str | None = None  # target named in the pending approval
    approved: bool = False
    pending_rejoin: frozenset[str] = frozenset()
    # each site's server as the traffic backend reports it (None: no backend, or a ramp
    # is moving traffic itself)
    traffic: Mapping[str, ServerView] | None = None
    desired_weights: Mapping[str, int] | None = None  # a ramp in progress overrides
    busy: bool = False  # an operator procedure (switchover, failback) is running

    def site(self, name: str) -> SiteState | None:
        return next((s for s in self.sites if s.name == name), None)


@dataclass(frozen=True)
class Hold:
    reason: str
    kind: str = field(default="hold", init=False)


@dataclass(frozen=True)
class AwaitApproval:
    target: str
    reason: str
    kind: str = field(default="await_approval", init=False)


@dataclass(frozen=True)
class CancelApproval:
    reason: str
    kind: str = field(default="cancel_approval", init=False)


@dataclass(frozen=True)
class StartFailover:
    target: str
    old_primary: str
    reason: str
    kind: str = field(default="start_failover", init=False)


@dataclass(frozen=True)
class AbortFailover:
    reason: str
    kind: str = field(default="abort_failover", init=False)


@dataclass(frozen=True)
class Wait:
    until: float
    reason: str
    kind: str = field(default="wait_lease_expiry", init=False)


@dataclass(frozen=True)
class Prepare:
    target: str
    kind: str = field(default="prepare", init=False)


@dataclass(frozen=True)
class Promote:
    target: str
    epoch: int
    old_primary: str
    kind: str = field(default="promote", init=False)


@dataclass(frozen=True)
class Rejoin:
    site: str
    primary: str
    epoch: int
    kind: str = field(default="rejoin", init=False)


@dataclass(frozen=True)
class SetWeights:
    """Bring the traffic backend to these weights and the server states they imply
    (``traffic.state.plan``)."""

    weights: Mapping[str, int]
    kind: str = field(default="set_weights", init=False)


Action = (
    Hold
    | AwaitApproval
    | CancelApproval
    | StartFailover
    | AbortFailover
    | Wait
    | Prepare
    | Promote
    | Rejoin
    | SetWeights
)


def is_candidate(s: SiteState, obs: Observed) -> bool:
    """A standby that may be promoted: up, deep-healthy, a standby on the current epoch."""
    return (
        s.name != obs.primary and s.up and s.ready and s.role == "standby" and s.epoch == obs.epoch
    )


def best_candidate(obs: Observed) -> str | None:
    ranked = sorted(
        (s for s in obs.sites if is_candidate(s, obs)),
        key=lambda s: (s.lag_records if s.lag_records is not None else 1 << 62, s.name),
    )
    return ranked[0].name if ranked else None


def target_weights(obs: Observed) -> dict[str, int]:
    if obs.desired_weights is not None:
        return dict(obs.desired_weights)
    return {s.name: 100 if s.name == obs.primary else 0 for s in obs.sites}


def _failover_step(obs: Observed, fo: Failover) -> Action:
    if fo.phase == "promoting":
        # The DCS already names the target (epoch bumped); repeat the order until it lands.
        t = obs.site(fo.target)
        if t is None or not (t.up and t.ready):
            return Hold(f"promotion of {fo.target} waits for it to answer")
        return Promote(fo.target, obs.epoch, fo.old_primary)
    old = obs.site(fo.old_primary)
    if fo.phase == "revoked" and old is not None and old.up and old.ready:
        # Nothing irreversible has happened yet: it may renew its lease again.
        return AbortFailover(f"{fo.old_primary} answers deep checks again")
    target = obs.site(fo.target)
    if target is None or not is_candidate(target, obs):
        return Hold(f"failover to {fo.target} waits: it is not a healthy standby on the epoch")
    if obs.now < fo.not_before:
        what = "lease" if fo.phase == "revoked" else "failsafe confirmations"
        return Wait(fo.not_before, f"until {fo.old_primary}'s {what} have certainly expired")
    if fo.phase == "revoked":
        return Prepare(fo.target)
    return Promote(fo.target, obs.epoch + 1, fo.old_primary)


def failsafe_wait(last_confirmed_ago: float | None, lease_ttl: float, margin: float) -> float:
    """Seconds to wait before promoting after the standby stopped vouching: a failsafe
    confirmation keeps the old primary writing for one lease TTL from when it was given,
    and the safety margin counts from there too; none given, nothing to wait out."""
    if last_confirmed_ago is None:
        return 0.0
    return max(0.0, lease_ttl + margin - last_confirmed_ago)


def decide(obs: Observed) -> Action:
    """The next action for the controller, from what it observed."""
    if obs.failover is not None:
        return _failover_step(obs, obs.failover)
    if obs.busy:
        return Hold("an operator procedure is running")
    primary = obs.site(obs.primary)
    primary_down = primary is not None and not primary.up
    if primary_down:
        target = best_candidate(obs)
        if target is None:
            return Hold(f"primary {obs.primary} is down and no standby can be promoted")
        reason = f"primary {obs.primary} failed its deep checks"
        if obs.mode == "automatic" or obs.approved:
            return StartFailover(target, obs.primary, reason)
        return AwaitApproval(target, reason)
    if obs.awaiting_approval is not None:
        return CancelApproval(f"primary {obs.primary} is up again")
    for s in obs.sites:
        if s.name == obs.primary or not s.up:
            continue
        if s.role == "primary" or s.name in obs.pending_rejoin:
            return Rejoin(s.name, obs.primary, obs.epoch)
    if obs.traffic is not None:
        want = target_weights(obs)
        if traffic_state.plan(want, obs.traffic):
            return SetWeights(want)
    return Hold("steady")


def ramp_step(
    steps: list[int], index: int, healthy: bool
) -> tuple[Literal["next", "done", "abort"], int]:
    """Failback traffic ramp: after step ``index`` ran its time, go on, finish, or abort.

    Returns (verdict, step index to hold): on a failed health gate, the last good step
    (or -1: none was good, all traffic back on the other site)."""
    if not healthy:
        return "abort", index - 1
    if index + 1 >= len(steps):
        return "done", index
    return "next", index + 1


def ramp_weights(site: str, others: list[str], percent: int) -> dict[str, int]:
    """Weights sending ``percent`` of traffic to ``site`` and the rest to the others."""
    out = {site: percent}
    for name in others:
        out[name] = 100 - percent
    return out
