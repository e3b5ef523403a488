"""Pure traffic decisions: weighted choice, sticky resolution, ramp steps (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from standby.cluster.traffic import weights as w
from standby.httpheaders import cookie_value, end_to_end, forwarded_request

names = st.sampled_from(["a", "b", "c", "d"])
weight_maps = st.dictionaries(names, st.integers(0, 100), min_size=1)
points = st.floats(0, 1, exclude_max=True)


@given(weight_maps, st.sets(names), points)
def test_choice_is_always_eligible_or_none(
    weights: dict[str, int], healthy: set[str], p: float
) -> None:
    site = w.choose(weights, healthy, p)
    eligible = w.eligible(weights, healthy)
    if eligible:
        assert site in eligible
    else:
        assert site is None


@given(weight_maps, st.sets(names))
def test_choice_shares_follow_weights(weights: dict[str, int], healthy: set[str]) -> None:
    # sweeping the point over a fine grid hands each site a share equal to its weight
    eligible = w.eligible(weights, healthy)
    total = sum(eligible.values())
    grid = 1000
    counts: dict[str, int] = {}
    for i in range(grid):
        site = w.choose(weights, healthy, i / grid)
        if site is not None:
            counts[site] = counts.get(site, 0) + 1
    for site, weight in eligible.items():
        assert abs(counts.get(site, 0) / grid - weight / total) <= 1 / grid * len(eligible)


@given(st.one_of(st.none(), names), weight_maps, st.sets(names), points, st.sets(names))
def test_sticky_site_kept_only_while_eligible(
    pinned: str | None, weights: dict[str, int], healthy: set[str], p: float, exclude: set[str]
) -> None:
    site = w.resolve(pinned, weights, healthy, p, exclude)
    eligible = {s for s in w.eligible(weights, healthy) if s not in exclude}
    if pinned in eligible:
        assert site == pinned
    elif eligible:
        assert site in eligible
    else:
        assert site is None


@given(names, st.lists(names, min_size=1, max_size=3, unique=True), st.lists(st.integers(0, 100)))
def test_ramp_steps_sum_to_100(to: str, others: list[str], pcts: list[int]) -> None:
    others = [o for o in others if o != to] or ["z"]
    steps = w.ramp_steps(to, others, pcts)
    assert len(steps) == len(pcts)
    for pct, step in zip(pcts, steps, strict=True):
        assert step[to] == pct and sum(step.values()) == 100
        assert max(step[o] for o in others) - min(step[o] for o in others) <= 1


def test_validate_rejects_bad_updates() -> None:
    assert w.validate({"a": 0, "b": 100}, {"a", "b"}) == {"a": 0, "b": 100}
    for bad in ({"x": 1}, {"a": -1}, {"a": 101}, {"a": True}, {"a": 1.5}):
        with pytest.raises(ValueError):
            w.validate(bad, {"a", "b"})


def test_header_helpers() -> None:
    raw = [
        (b"Connection", b"keep-alive, X-Private"),
        (b"X-Private", b"1"),
        (b"Proxy-Whatever", b"1"),
        (b"Upgrade", b"h2c"),
        (b"Cookie", b"a=1; standby_route=site-b; c=3"),
        (b"Host", b"idp.example"),
    ]
    kept = dict(end_to_end(raw))
    assert set(kept) == {b"cookie", b"host"}
    assert cookie_value(raw, "standby_route") == "site-b"
    assert cookie_value(raw, "nope") is None
    fwd = dict(forwarded_request(raw, "10.1.2.3", "https"))
    assert fwd[b"x-forwarded-for"] == b"10.1.2.3"
    assert fwd[b"x-forwarded-proto"] == b"https"
    assert fwd[b"x-forwarded-host"] == b"idp.example" and b"host" not in fwd


def test_make_backend_follows_the_topology() -> None:
    from pydantic import SecretStr

    from standby.cluster.topology import ClusterSecrets, Topology
    from standby.cluster.traffic import TrafficBackend, make_backend
    from standby.cluster.traffic.builtin_client import BuiltinRouterClient
    from standby.cluster.traffic.haproxy import HaproxyBackend

    secrets = ClusterSecrets(replication_secret=SecretStr("r"), admin_token=SecretStr("t"))
    sites = [{"name": "a", "url": "http://127.0.0.1:1", "role": "primary"}]
    builtin = make_backend(Topology.model_validate({"sites": sites}), secrets)
    assert isinstance(builtin, BuiltinRouterClient) and isinstance(builtin, TrafficBackend)
    topo = Topology.model_validate(
        {"sites": sites, "traffic": {"backend": "haproxy", "haproxy": {"socket": "/x.sock"}}}
    )
    ha = make_backend(topo, secrets)
    assert isinstance(ha, HaproxyBackend) and ha.socket_path == "/x.sock"
