"""An in-process transport for tests: messages are kept in a list, by name, per process."""

from __future__ import annotations

import threading
from typing import ClassVar

from notifier.transports import Outgoing, Receipt


class MemoryTransport:
    name = "memory"
    _named: ClassVar[dict[str, MemoryTransport]] = {}
    _registry_lock = threading.Lock()

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self._lock = threading.Lock()

    @classmethod
    def named(cls, name: str) -> MemoryTransport:
        with cls._registry_lock:
            return cls._named.setdefault(name, cls())

    @classmethod
    def forget(cls, name: str) -> None:
        with cls._registry_lock:
            cls._named.pop(name, None)

    def send(self, mail: Outgoing) -> Receipt:
        with self._lock:
            self.sent.append(mail)
            return Receipt(f"kept in memory as #{len(self.sent)}")

    def close(self) -> None:
        pass
