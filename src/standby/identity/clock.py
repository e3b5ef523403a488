"""The identity clock: UTC microseconds, replaceable per site so tests can move time."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from standby.store import now_us

if TYPE_CHECKING:
    from standby.server import Site

CLOCK_PART = "clock"
US = 1_000_000


def now(site: Site) -> int:
    """Current time in UTC microseconds; ``site.parts["clock"]`` (a callable) overrides it."""
    clock: Callable[[], int] | None = site.parts.get(CLOCK_PART)
    return clock() if clock is not None else now_us()
