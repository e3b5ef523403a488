"""Drill measurements from acknowledgement logs (pure; hypothesis builds the logs)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from standby.drills import measure
from standby.drills.acks import Ack


def ack(
    op: str,
    key: str,
    send: float,
    recv: float,
    ok: bool = True,
    site: str | None = "a",
    epoch: int | None = 1,
    error: str | None = None,
) -> Ack:
    return Ack(
        op,
        key,
        send,
        recv,
        1000 + send,
        1000 + recv,
        ok,
        200 if ok else 503,
        None if ok else (error or "http_503 no_healthy_site"),
        site,
        epoch,
    )


@st.composite
def logs(draw: st.DrawFn) -> tuple[list[Ack], float]:
    fault = draw(st.floats(1, 50))
    n = draw(st.integers(0, 30))
    acks = []
    for i in range(n):
        send = draw(st.floats(0, 100))
        recv = send + draw(st.floats(0, 3))
        op = draw(st.sampled_from(["login", "write", "token"]))
        ok = draw(st.booleans())
        site = draw(st.sampled_from(["a", "b"]))
        acks.append(ack(op, f"k{i}", send, recv, ok, site, 1 if site == "a" else 2))
    return acks, fault


@given(logs())
def test_rto_is_the_first_login_sent_after_the_fault(case: tuple[list[Ack], float]) -> None:
    acks, fault = case
    got = measure.rto(acks, fault)
    candidates = [a for a in acks if a.op == "login" and a.ok and a.send_mono >= fault]
    if not candidates:
        assert got is None
    else:
        assert got is not None and got >= 0
        assert got == min(a.recv_mono for a in candidates) - fault
        # nothing that counts finished earlier
        assert all(a.recv_mono - fault >= got for a in candidates)


@given(logs(), st.data())
def test_rpo_counts_exactly_the_acknowledged_writes_missing(
    case: tuple[list[Ack], float], data: st.DataObject
) -> None:
    acks, fault = case
    keys = [a.key for a in acks]
    present = set(data.draw(st.lists(st.sampled_from(keys), unique=True))) if keys else set()
    out = measure.rpo(acks, present, fault)
    lost = [a for a in acks if a.op == "write" and a.ok and a.key not in present]
    assert out["lost"] == len(lost)
    assert out["acknowledged_writes"] == sum(a.op == "write" and a.ok for a in acks)
    assert set(out["lost_keys"]) == {a.key for a in lost}
    if lost:
        start, end = out["window_from_fault_s"]
        assert start == min(a.send_mono for a in lost) - fault
        assert end == max(a.recv_mono for a in lost) - fault
        assert math.isclose(out["window_s"], end - start, abs_tol=1e-9)
        assert out["window_s"] >= 0
    else:
        assert out["window_s"] == 0.0


@given(logs())
def test_errors_by_kind_add_up_to_the_failures(case: tuple[list[Ack], float]) -> None:
    acks, _ = case
    errors = measure.errors_by_kind(acks)
    assert sum(n for kinds in errors.values() for n in kinds.values()) == sum(
        not a.ok for a in acks
    )


def test_clean_failover_has_no_dual_primary() -> None:
    acks = [
        ack("write", "w1", 0.0, 0.1, site="a", epoch=1),
        ack("write", "w2", 0.5, 0.6, site="a", epoch=1),
        ack("write", "w3", 0.55, 3.0, ok=False, site=None, epoch=None),
        ack("write", "w4", 3.0, 3.1, site="b", epoch=2),
    ]
    assert measure.dual_primaries(acks) == []
    assert [r["site"] for r in measure.acknowledgers(acks)] == ["a", "b"]


def test_old_primary_acknowledging_after_the_new_one_is_flagged() -> None:
    acks = [
        ack("write", "w1", 0.0, 0.1, site="a", epoch=1),
        ack("write", "w2", 1.0, 1.1, site="b", epoch=2),
        ack("write", "w3", 1.5, 1.6, site="a", epoch=1),  # sent after b acknowledged
    ]
    (conflict,) = measure.dual_primaries(acks)
    assert conflict["a"] == {"site": "a", "epoch": 1}
    assert conflict["b"] == {"site": "b", "epoch": 2}
    assert abs(conflict["overlap_s"] - 0.4) < 1e-9


def test_two_sites_on_one_epoch_is_always_flagged() -> None:
    acks = [
        ack("write", "w1", 0.0, 0.1, site="a", epoch=3),
        ack("write", "w2", 5.0, 5.1, site="b", epoch=3),
    ]
    (conflict,) = measure.dual_primaries(acks)
    assert conflict["same_epoch"] is True


def test_summary_of_a_failover() -> None:
    acks = [
        ack("write", "w1", 0.0, 0.1, site="a", epoch=1),
        ack("write", "w2", 0.9, 0.95, site="a", epoch=1),
        ack("login", "u1", 1.1, 1.2, ok=False, site=None, epoch=None),
        ack("login", "u1", 2.0, 2.4, site="b", epoch=2),
        ack("write", "w3", 2.5, 2.6, site="b", epoch=2),
    ]
    out = measure.summarize(acks, {"w1", "w3"}, fault_mono=1.0)
    assert abs(out["rto_s"] - 1.4) < 1e-9
    assert abs(out["first_write_after_fault_s"] - 1.6) < 1e-9
    assert out["rpo"]["lost"] == 1 and out["rpo"]["lost_keys"] == ["w2"]
    assert out["errors"] == {"login": {"http_503 no_healthy_site": 1}}
    assert out["dual_primaries"] == []


def test_rto_phases_from_the_timeline() -> None:
    from standby.drills.failover import phases, timeline

    events = [
        {"at": 99.0, "kind": "site_down", "site": "a"},  # before the fault: not this one
        {"at": 100.4, "kind": "site_down", "site": "a"},
        {"at": 101.5, "kind": "promoted", "site": "b"},
    ]
    milestones = [{"at": 100.0, "mono": 5.0, "kind": "fault_kill9", "source": "drill"}]
    rows = timeline(events, milestones, fault_wall=100.0)
    assert [r["kind"] for r in rows] == ["site_down", "fault_kill9", "site_down", "promoted"]
    assert all("mono" not in r for r in rows)
    got = phases(rows, rto_s=2.0)
    assert math.isclose(got["detected_s"], 0.4) and math.isclose(got["promoted_s"], 1.5)
    assert math.isclose(got["detect_to_promote_s"], 1.1)
    assert math.isclose(got["promote_to_first_login_s"], 0.5)
    assert phases([], None) == {
        "detected_s": None,
        "promoted_s": None,
        "detect_to_promote_s": None,
        "promote_to_first_login_s": None,
    }


def test_percentile_nearest_rank() -> None:
    assert measure.percentile([], 99) is None
    assert measure.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert measure.percentile([float(i) for i in range(1, 101)], 99) == 99.0
    assert measure.percentile([5.0], 99) == 5.0


@given(logs())
def test_latency_phases_count_every_request_once(case: tuple[list[Ack], float]) -> None:
    acks, fault = case
    rto = measure.rto(acks, fault)
    phases = measure.latency_phases(acks, fault, rto)
    assert sum(p["requests"] for p in phases.values()) == len(acks)
    for p in phases.values():
        if p["requests"]:
            assert p["p50_s"] <= p["p99_s"] <= p["max_s"]
    held = [
        a.recv_mono - a.send_mono
        for a in acks
        if fault <= a.send_mono < fault + (rto if rto is not None else 1e9)
    ]
    assert phases["during"]["max_s"] == max(held, default=None)
