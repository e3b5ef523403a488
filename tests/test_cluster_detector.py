"""Failure detection (pure): thresholds, and the timing model the defaults are chosen by."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from standby.cluster.detector import Detector, Fault, simulate, worst_stall_failures
from standby.cluster.topology import ControllerSettings

DEFAULTS = ControllerSettings()


def run(obs: list[bool], threshold: int, recovery: int) -> list[Detector]:
    det = Detector(threshold=threshold, recovery=recovery)
    states = []
    for ok in obs:
        det = det.observe(ok)
        states.append(det)
    return states


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 6), st.integers(1, 4))
def test_down_exactly_after_threshold_consecutive_failures(obs, threshold, recovery):
    states = run(obs, threshold, recovery)
    run_len = 0
    ever_reached = False
    for i, (ok, det) in enumerate(zip(obs, states, strict=True)):
        run_len = 0 if ok else run_len + 1
        ever_reached = ever_reached or run_len >= threshold
        if not ever_reached:
            assert not det.down, f"declared down at {i} without {threshold} failures in a row"
        if run_len >= threshold:
            assert det.down
        if ok and i > 0 and not states[i - 1].down:
            assert not det.down  # a success never brings a site down


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 6), st.integers(1, 4))
def test_up_again_after_recovery_successes(obs, threshold, recovery):
    states = run(obs + [True] * recovery, threshold, recovery)
    assert not states[-1].down
    was_down = bool(obs) and states[len(obs) - 1].down
    if was_down and states[len(obs) - 1].successes + 1 < recovery:
        assert states[len(obs)].down  # one success is not enough when recovery > 1


@settings(max_examples=300)
@given(
    duration=st.floats(0.0, 1.0),
    phase=st.floats(0.0, 10.0),
    latency=st.floats(0.0005, 0.05),
)
def test_defaults_ride_out_a_one_second_stall(duration, phase, latency):
    got = simulate(
        Fault(start=5.0, duration=duration, kind="stall"),
        interval=DEFAULTS.check_interval,
        timeout=DEFAULTS.check_timeout,
        threshold=DEFAULTS.failure_threshold,
        phase=phase,
        latency=latency,
    )
    assert got is None, f"a {duration:.3f} s stall was declared a failure after {got:.3f} s"


def test_worst_case_stall_count_is_below_the_threshold():
    worst = worst_stall_failures(
        1.0, interval=DEFAULTS.check_interval, timeout=DEFAULTS.check_timeout
    )
    assert worst < DEFAULTS.failure_threshold


@settings(max_examples=200)
@given(duration=st.floats(0.0, 3.0), phase=st.floats(0.0, 1.0))
def test_model_never_counts_more_failures_than_the_bound(duration, phase):
    # With a threshold one above the bound, the simulation must never declare the stall.
    bound = worst_stall_failures(duration, interval=0.2, timeout=0.5)
    got = simulate(
        Fault(start=5.0, duration=duration),
        interval=0.2,
        timeout=0.5,
        threshold=bound + 1,
        phase=phase,
        latency=0.0,
    )
    assert got is None


@settings(max_examples=200)
@given(phase=st.floats(0.0, 1.0), since_grant=st.floats(0.0, 1.0))
def test_defaults_fail_over_a_dead_primary_within_the_rto_budget(phase, since_grant):
    since_grant = since_grant * DEFAULTS.lease_ttl / 3  # renewals every TTL/3
    detected = simulate(
        Fault(start=5.0, duration=1e9, kind="dead"),
        interval=DEFAULTS.check_interval,
        timeout=DEFAULTS.check_timeout,
        threshold=DEFAULTS.failure_threshold,
        phase=phase,
    )
    assert detected is not None
    # Promotion waits for detection and for the lease (granted before the kill) to expire.
    lease_gone = DEFAULTS.lease_ttl + DEFAULTS.safety_margin - since_grant
    promote_at = max(detected, lease_gone)
    assert promote_at <= 2.0, "the model leaves under 1 s for promotion and traffic in 3 s"


def test_a_long_stall_is_detected():
    got = simulate(
        Fault(start=5.0, duration=5.0),
        interval=DEFAULTS.check_interval,
        timeout=DEFAULTS.check_timeout,
        threshold=DEFAULTS.failure_threshold,
    )
    assert got is not None and got < 5.0
