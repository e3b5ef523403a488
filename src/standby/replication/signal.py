"""Wakes waiting stream tasks the moment a write commits (lag in ms, not a poll interval)."""

from __future__ import annotations

import asyncio
import contextlib
import threading


class CommitSignal:
    """Commit hooks run in writer threads; stream tasks wait on their own event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            if loop.is_closed():
                continue
            # The loop may shut down between the check and the call.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def register(self) -> asyncio.Event:
        event = asyncio.Event()
        with self._lock:
            self._waiters.add((asyncio.get_running_loop(), event))
        return event

    def unregister(self, event: asyncio.Event) -> None:
        with self._lock:
            self._waiters = {w for w in self._waiters if w[1] is not event}
