"""The identity store: schema, engines, the change-logged write path, log reads and checks."""

from standby.store.records import GENESIS_HASH, Position, Record
from standby.store.store import (
    ApplyError,
    Conflict,
    Head,
    NotWritable,
    Store,
    StoreError,
    Writer,
    now_us,
)

__all__ = [
    "GENESIS_HASH",
    "ApplyError",
    "Conflict",
    "Head",
    "NotWritable",
    "Position",
    "Record",
    "Store",
    "StoreError",
    "Writer",
    "now_us",
]
