"""The controller's event log: every decision and action with a timestamp, in memory
and appended to a JSON-lines file, so a failover can be replayed as a timeline."""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

log = logging.getLogger("standby.cluster.events")


def events_path(dcs_path: str | Path) -> Path:
    """Where the controller appends its events: beside the DCS file, its suffix replaced
    (``controller.db`` -> ``controller.events.jsonl``), as the README says."""
    return Path(dcs_path).with_suffix(".events.jsonl")


class EventLog:
    def __init__(self, path: str | Path | None, keep: int = 5000) -> None:
        self.path = Path(path) if path else None
        self._events: deque[dict[str, Any]] = deque(maxlen=keep)
        self._seq = 0
        self._t0 = time.monotonic()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                for line in self.path.read_text().splitlines()[-keep:]:
                    try:
                        self._events.append(json.loads(line))
                    except ValueError:
                        continue
                self._seq = int(self._events[-1].get("seq", 0)) if self._events else 0

    def append(self, kind: str, **detail: Any) -> dict[str, Any]:
        self._seq += 1
        event = {
            "seq": self._seq,
            "at": time.time(),  # wall clock, seconds (UTC epoch)
            "t": round(time.monotonic() - self._t0, 4),  # seconds since controller start
            "kind": kind,
            **detail,
        }
        self._events.append(event)
        line = json.dumps(event, default=str, sort_keys=True)
        log.info(line)
        if self.path is not None:
            with self.path.open("a") as fh:
                fh.write(line + "\n")
        return event

    def since(self, seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        return [e for e in self._events if int(e["seq"]) > seq][:limit]

    def last(self, n: int) -> list[dict[str, Any]]:
        return list(self._events)[-n:]
