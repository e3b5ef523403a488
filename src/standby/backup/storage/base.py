"""The backup store interface: named immutable objects; a put is all-or-nothing."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class StoredObject:
    name: str
    size: int


class Storage(ABC):
    """Where backup objects live. Names use ``/``; a reader never sees a partial object."""

    description: str = "storage"

    @abstractmethod
    def put(self, name: str, data: bytes) -> None: ...

    @abstractmethod
    def get(self, name: str) -> bytes: ...

    @abstractmethod
    def list(self, prefix: str) -> list[StoredObject]: ...

    @abstractmethod
    def delete(self, name: str) -> None: ...

    def exists(self, name: str) -> bool:
        return any(o.name == name for o in self.list(name))
