"""Failure detection: a pure function from one site's check results to up/down.

A site is declared down after ``threshold`` consecutive failed deep checks and up
again after ``recovery`` consecutive successes. The checks are sequential: the next
one starts ``interval`` after the previous one started, or when it ended (timed out),
whichever is later. ``simulate`` replays that schedule against a fault, so the
defaults can be shown (by tests, not hope) to ride out a 1 s stall of a healthy
primary and still fail over within the RTO budget after a kill -9.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Detector:
    """One site's detection state; ``observe`` returns the next state."""

    threshold: int = 3
    recovery: int = 1
    failures: int = 0  # consecutive
    successes: int = 0  # consecutive
    down: bool = False

    def observe(self, ok: bool) -> Detector:
        if ok:
            successes = self.successes + 1
            down = self.down and successes < self.recovery
            return replace(self, failures=0, successes=successes, down=down)
        failures = self.failures + 1
        down = self.down or failures >= self.threshold
        return replace(self, failures=failures, successes=0, down=down)


@dataclass(frozen=True)
class Fault:
    """A fault of a site starting at ``start`` seconds: a stall (process paused, checks
    hang until it resumes) of ``duration`` seconds, or death (checks fail at once)."""

    start: float
    duration: float
    kind: str = "stall"  # "stall" | "dead"


def check_outcome(sent: float, timeout: float, fault: Fault, latency: float) -> tuple[bool, float]:
    """(ok, ended_at) of one check sent at ``sent`` against ``fault``."""
    end = fault.start + fault.duration
    if fault.kind == "dead":
        if sent >= fault.start and sent < end:
            return False, sent + latency  # connection refused: fails at once
        return True, sent + latency
    # A stalled process accepts the connection (kernel backlog) but answers only on resume.
    answered = (max(sent, end) if fault.start <= sent < end else sent) + latency
    if answered - sent > timeout:
        return False, sent + timeout
    return True, answered


def simulate(
    fault: Fault,
    *,
    interval: float,
    timeout: float,
    threshold: int,
    phase: float = 0.0,
    latency: float = 0.005,
    horizon: float = 10.0,
) -> float | None:
    """When (seconds after the fault starts) the site is declared down, or None."""
    det = Detector(threshold=threshold)
    sent = fault.start - interval + phase % interval
    for _ in range(100_000):
        if sent > fault.start + horizon:
            return None
        ok, ended = check_outcome(sent, timeout, fault, latency)
        det = det.observe(ok)
        if det.down:
            return ended - fault.start
        sent = max(sent + interval, ended)
    return None


def worst_stall_failures(duration: float, *, interval: float, timeout: float) -> int:
    """Most consecutive failed checks a stall of ``duration`` can cause (sequential checks)."""
    # Checks sent in [start, start + duration - timeout] fail; after a failure the next
    # check starts no earlier than ``timeout`` later, so at most this many fit.
    window = duration - timeout
    if window < 0:
        return 0
    step = max(interval, timeout)
    return int(window // step) + 1
