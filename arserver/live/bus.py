"""The event bus between write paths and live hubs.

Write paths call ``publish`` after their transaction committed; hubs ``subscribe`` a listener.
``LocalBus`` keeps it in one process (the embedded default); with ``ARSERVER_REDIS_URL`` a Redis
bus carries the same events between processes and machines.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from arserver.live.events import Change

log = logging.getLogger(__name__)

Listener = Callable[[Sequence[Change]], None]


class Bus(Protocol):
    def publish(self, changes: Sequence[Change]) -> None:
        """Hand committed changes to every hub; never blocks on a slow subscriber. Thread-safe."""

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every batch published from now on; returns an unsubscribe
        function. Listeners must return quickly (hand the work to their own loop)."""


class LocalBus:
    """In-process bus: publish calls the listeners in the publishing thread."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def publish(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(changes)
            except Exception:  # one broken hub must not fail the write that already committed
                log.exception("a live listener failed")

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe
