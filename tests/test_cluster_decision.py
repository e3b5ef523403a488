"""The controller's decision (pure): invariants over random observed states, and the
failover sequence a kill -9 of the primary walks through."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from standby.cluster import decision as d
from standby.cluster.traffic import state as ts

NAMES = ["site-a", "site-b", "site-c"]


@st.composite
def observed(draw: st.DrawFn) -> d.Observed:
    n = draw(st.integers(2, 3))
    names = NAMES[:n]
    epoch = draw(st.integers(1, 5))
    sites = tuple(
        d.SiteState(
            name=name,
            up=draw(st.booleans()),
            ready=draw(st.booleans()),
            role=draw(st.sampled_from(["primary", "standby", None])),
            epoch=draw(st.sampled_from([epoch - 1, epoch, epoch + 1, None])),
            lag_records=draw(st.one_of(st.none(), st.integers(0, 100))),
        )
        for name in names
    )
    primary = draw(st.sampled_from(names))
    now = draw(st.floats(0, 100))
    failover = None
    if draw(st.booleans()):
        failover = d.Failover(
            target=draw(st.sampled_from(names)),
            old_primary=draw(st.sampled_from(names)),
            reason="test",
            phase=draw(st.sampled_from(["revoked", "prepared", "promoting"])),
            not_before=draw(st.floats(0, 100)),
        )
    server = st.builds(
        ts.ServerView,
        st.sampled_from([0, 10, 100]),
        st.sampled_from([None, "ready", "drain", "maint"]),
        st.sampled_from([None, "up", "down"]),
    )
    traffic = draw(st.one_of(st.none(), st.fixed_dictionaries({k: server for k in names})))
    return d.Observed(
        now=now,
        primary=primary,
        epoch=epoch,
        mode=draw(st.sampled_from(["automatic", "approval"])),
        sites=sites,
        lease_expires_at=draw(st.floats(0, 100)),
        failover=failover,
        awaiting_approval=draw(st.sampled_from([None, *names])),
        approved=draw(st.booleans()),
        pending_rejoin=frozenset(draw(st.sets(st.sampled_from(names)))),
        traffic=traffic,
        busy=draw(st.booleans()),
    )


@settings(max_examples=400)
@given(observed())
def test_invariants(obs: d.Observed) -> None:
    action = d.decide(obs)
    primary = obs.site(obs.primary)
    assert primary is not None
    if isinstance(action, d.Promote):
        # Only from a failover whose waiting is over, on a standby fit to take over.
        fo = obs.failover
        assert fo is not None and fo.phase in ("prepared", "promoting")
        assert action.target == fo.target
        if fo.phase == "prepared":
            assert obs.now >= fo.not_before
            assert action.epoch == obs.epoch + 1
            target = obs.site(action.target)
            assert target is not None and d.is_candidate(target, obs)
        else:
            assert action.epoch == obs.epoch
    if isinstance(action, d.Prepare):
        assert obs.failover is not None and obs.failover.phase == "revoked"
        assert obs.now >= obs.failover.not_before
    if isinstance(action, d.StartFailover):
        assert obs.failover is None and not obs.busy
        assert not primary.up, "never fail over from a primary that is up"
        assert obs.mode == "automatic" or obs.approved
        target = obs.site(action.target)
        assert target is not None and d.is_candidate(target, obs)
        assert action.target != obs.primary and action.old_primary == obs.primary
    if isinstance(action, d.AwaitApproval):
        assert obs.mode == "approval" and not obs.approved and not primary.up
    if isinstance(action, d.Rejoin):
        assert action.site != obs.primary and action.epoch == obs.epoch
        assert obs.failover is None
    if isinstance(action, d.SetWeights):
        # only when the backend is not yet what the weights imply (weights or states)
        assert obs.traffic is not None and ts.plan(action.weights, obs.traffic)
        assert action.weights == d.target_weights(obs)
        assert obs.failover is None and not obs.busy
    if isinstance(action, d.Hold) and action.reason == "steady" and obs.traffic is not None:
        assert not ts.plan(d.target_weights(obs), obs.traffic)
    if isinstance(action, d.AbortFailover):
        assert obs.failover is not None and obs.failover.phase == "revoked"
    if isinstance(action, d.Wait):
        assert obs.failover is not None and action.until > obs.now


@given(observed())
def test_decide_is_deterministic(obs: d.Observed) -> None:
    assert d.decide(obs) == d.decide(obs)


def healthy(epoch: int = 1) -> d.Observed:
    return d.Observed(
        now=10.0,
        primary="site-a",
        epoch=epoch,
        mode="automatic",
        sites=(
            d.SiteState("site-a", True, True, "primary", epoch, 0),
            d.SiteState("site-b", True, True, "standby", epoch, 0),
        ),
        lease_expires_at=11.3,
        traffic={"site-a": ts.ServerView(100, "ready"), "site-b": ts.ServerView(0, "maint")},
    )


def kill_primary(obs: d.Observed) -> d.Observed:
    return replace(obs, sites=(replace(obs.sites[0], up=False, ready=False), obs.sites[1]))


def test_steady_state_holds() -> None:
    assert isinstance(d.decide(healthy()), d.Hold)


def test_kill_walks_revoke_wait_prepare_wait_promote() -> None:
    obs = kill_primary(healthy())
    a = d.decide(obs)
    assert isinstance(a, d.StartFailover) and a.target == "site-b"
    fo = d.Failover("site-b", "site-a", a.reason, "revoked", obs.lease_expires_at)
    obs = replace(obs, failover=fo)
    w = d.decide(obs)
    assert isinstance(w, d.Wait) and w.until == obs.lease_expires_at
    obs = replace(obs, now=obs.lease_expires_at)
    assert d.decide(obs) == d.Prepare("site-b")
    obs = replace(obs, failover=replace(fo, phase="prepared", not_before=12.0))
    assert isinstance(d.decide(obs), d.Wait)
    obs = replace(obs, now=12.0)
    assert d.decide(obs) == d.Promote("site-b", 2, "site-a")
    # After promotion the DCS names site-b on epoch 2: traffic follows.
    after = replace(
        obs,
        failover=None,
        primary="site-b",
        epoch=2,
        sites=(obs.sites[0], replace(obs.sites[1], role="primary", epoch=2)),
        pending_rejoin=frozenset({"site-a"}),
    )
    assert d.decide(after) == d.SetWeights({"site-a": 0, "site-b": 100})
    # The old primary comes back claiming the primary role on epoch 1: fence and follow.
    back = replace(
        after,
        traffic={"site-a": ts.ServerView(0, "maint"), "site-b": ts.ServerView(100, "ready")},
        sites=(d.SiteState("site-a", True, True, "primary", 1, None), after.sites[1]),
    )
    assert d.decide(back) == d.Rejoin("site-a", "site-b", 2)


def test_primary_back_before_prepare_aborts() -> None:
    obs = healthy()
    fo = d.Failover("site-b", "site-a", "x", "revoked", 50.0)
    assert isinstance(d.decide(replace(obs, failover=fo)), d.AbortFailover)
    # ... but not once the standby was told to prepare.
    assert isinstance(d.decide(replace(obs, failover=replace(fo, phase="prepared"))), d.Wait)


def test_approval_mode_waits_for_approval() -> None:
    obs = replace(kill_primary(healthy()), mode="approval")
    assert d.decide(obs) == d.AwaitApproval("site-b", "primary site-a failed its deep checks")
    assert isinstance(d.decide(replace(obs, approved=True)), d.StartFailover)
    # The primary recovers while the request is pending: the request is withdrawn.
    back = replace(healthy(), mode="approval", awaiting_approval="site-b")
    assert isinstance(d.decide(back), d.CancelApproval)


def test_no_failover_to_a_lagging_epoch_or_unready_standby() -> None:
    obs = kill_primary(healthy())
    stale = replace(obs, sites=(obs.sites[0], replace(obs.sites[1], epoch=0)))
    assert isinstance(d.decide(stale), d.Hold)
    unready = replace(obs, sites=(obs.sites[0], replace(obs.sites[1], ready=False)))
    assert isinstance(d.decide(unready), d.Hold)


@given(st.lists(st.integers(1, 100), min_size=1, max_size=6, unique=True), st.data())
def test_ramp_steps_forward_and_aborts_to_last_good(steps, data) -> None:
    steps = sorted(steps)
    index = 0
    for _ in range(len(steps) + 1):
        healthy_gate = data.draw(st.booleans())
        verdict, nxt = d.ramp_step(steps, index, healthy_gate)
        if not healthy_gate:
            assert verdict == "abort" and nxt == index - 1
            break
        if index == len(steps) - 1:
            assert verdict == "done" and nxt == index
            break
        assert verdict == "next" and nxt == index + 1
        index = nxt
    weights = d.ramp_weights("site-a", ["site-b"], steps[index])
    assert weights["site-a"] + weights["site-b"] == 100


def test_failsafe_wait_counts_the_margin_from_the_last_vouch() -> None:
    assert d.failsafe_wait(None, 1.0, 0.3) == 0.0  # never vouched: nothing to wait out
    assert d.failsafe_wait(0.0, 1.0, 0.3) == 1.3
    assert abs(d.failsafe_wait(1.0, 1.0, 0.3) - 0.3) < 1e-9
    # a vouch many seconds ago keeps nobody writing: no margin added on top
    assert d.failsafe_wait(10.0, 1.0, 0.3) == 0.0


@given(
    st.one_of(st.none(), st.floats(0, 100)), st.floats(0.1, 10), st.floats(0, 2)
)
def test_failsafe_wait_never_promotes_before_the_vouch_expires(
    ago: float | None, ttl: float, margin: float
) -> None:
    wait = d.failsafe_wait(ago, ttl, margin)
    assert wait >= 0
    if ago is not None:
        assert ago + wait >= ttl + margin - 1e-9  # the old primary's TTL + margin have passed
        assert wait <= ttl + margin
