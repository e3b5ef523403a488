"""Synchronous replication: a write is acknowledged only once a standby applied it.

The wait happens in a store commit hook, after the local commit. If no standby
confirms within ``sync_timeout``:

- ``strict``: the client gets 503 ``not_writable`` and the write is NOT acknowledged,
  although it is committed on this primary (as with PostgreSQL's synchronous_commit
  when a wait is cancelled: the row exists locally, the client was told nothing was
  confirmed). Further writes are refused until a standby catches up.
- otherwise: the primary degrades to async, loudly (log line, metric
  ``standby_replication_degraded``, ``degraded`` in /replication/status) and returns to
  sync as soon as a standby has acknowledged everything up to the head.

When no standby is attached at all (no live stream, no ack within ``sync_timeout`` —
as on a standby just promoted after its primary died) there is nobody to wait for, so
the write degrades (or is refused, when strict) at once instead of after the timeout.
When the gate degrades or blocks, every write still waiting is woken and ends the same
way, instead of each one waiting out its own timeout.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Literal

from standby.store import NotWritable, Record

log = logging.getLogger("standby.replication.sync")

Outcome = Literal["confirmed", "degrade", "refuse", "skip"]


def after_wait(confirmed: bool, strict: bool, degraded: bool) -> Outcome:
    """What a sync write does once its wait ended. Pure."""
    if degraded:
        return "skip"
    if confirmed:
        return "confirmed"
    return "refuse" if strict else "degrade"


def standby_attached(peers: Iterable[tuple[bool, float]], now: float, timeout: float) -> bool:
    """Whether any standby can confirm a write soon: ``peers`` are (stream connected,
    wall-clock time of its last ack). Pure."""
    return any(connected or now - acked_at < timeout for connected, acked_at in peers)


class SyncGate:
    def __init__(
        self,
        site_name: str,
        timeout: float,
        strict: bool,
        enabled: bool,
        attached: Callable[[], bool] = lambda: True,
    ) -> None:
        self.site_name = site_name
        self.timeout = timeout
        self.strict = strict
        self.enabled = enabled
        self.attached = attached
        self.cond = threading.Condition()
        self.acked_lsn = 0
        self.degraded = False
        self.blocked = False  # strict: refuse writes until a standby caught up
        self.waits = 0
        self.timeouts = 0

    # ---------------------------------------------------------------- events

    def on_ack(self, lsn: int, head_lsn: Callable[[], int]) -> None:
        with self.cond:
            self.acked_lsn = max(self.acked_lsn, lsn)
            if (self.degraded or self.blocked) and self.acked_lsn >= head_lsn():
                was = "degraded" if self.degraded else "blocked"
                self.degraded = self.blocked = False
                log.warning(
                    json.dumps(
                        {"event": "sync_restored", "site": self.site_name, "was": was, "lsn": lsn}
                    )
                )
            self.cond.notify_all()

    def guard(self) -> None:
        if self.blocked:
            raise NotWritable(
                f"site {self.site_name!r} runs strict synchronous replication and no standby "
                "has confirmed recent writes; writes resume once a standby catches up"
            )

    def commit_hook(self, records: list[Record]) -> None:
        if not self.enabled or not records:
            return
        target = records[-1].lsn
        attached = self.attached()
        with self.cond:
            if self.degraded:
                return
            self.waits += 1
            if attached:
                self.cond.wait_for(
                    lambda: self.acked_lsn >= target or self.degraded or self.blocked,
                    self.timeout,
                )
            confirmed = self.acked_lsn >= target
            outcome = after_wait(confirmed, self.strict, self.degraded)
            if outcome in ("confirmed", "skip"):
                return
            self.timeouts += 1
            first = not (self.degraded or self.blocked)
            if outcome == "degrade":
                self.degraded = True
            else:
                self.blocked = True
            self.cond.notify_all()  # the other waiting writes end the same way, now
        if first:
            event = {
                "event": "sync_degraded" if outcome == "degrade" else "sync_write_unconfirmed",
                "site": self.site_name,
                "lsn": target,
                "timeout": self.timeout,
                "standby_attached": attached,
            }
            log.error(json.dumps(event))
        if outcome == "refuse":
            raise NotWritable(self._unconfirmed(target), committed=True)

    def _unconfirmed(self, target: int) -> str:
        return (
            f"write at lsn {target} committed on site {self.site_name!r} but no standby "
            f"confirmed it within {self.timeout}s (strict synchronous replication): it is "
            "not acknowledged; retry once a standby is back"
        )
