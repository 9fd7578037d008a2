"""The event bus between write paths and live hubs.

Write paths call ``publish`` after their transaction committed; hubs ``subscribe`` a listener.
``LocalBus`` keeps it in one process (the embedded default); with ``ARSERVER_REDIS_URL`` a Redis
bus carries the same events between processes and machines.

Besides the overlays' changes, the bus carries control events on the reserved layer
``TOKENS_LAYER``, which no client can subscribe to: ``token_revocations`` makes them, and every
hub takes them out of a batch (``revoked_tokens``) and closes those tokens' connections.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from arserver.config import Settings
from arserver.domain import Change, Layer
from arserver.errors import ArserverError

log = logging.getLogger(__name__)

#: Called with a batch of changes and its position in the bus (a Redis stream entry id; None on
#: the in-process bus, which has no history).
Listener = Callable[[Sequence[Change], str | None], None]

#: The layer of token events on the bus: never a live item, never sent to a client.
TOKENS_LAYER = "tokens"
_TOKEN_KEY = "token:"


def token_revocations(token_ids: Iterable[str]) -> list[Change]:
    """The changes to publish so that every hub closes the live connections of these tokens
    (one per token: key ``token:{id}``, ``removed``)."""
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    # The layer is not one of domain.Layer's (clients cannot subscribe to it): hence the cast.
    layer = cast(Layer, TOKENS_LAYER)
    return [
        Change(layer, _TOKEN_KEY + token_id, None, 0.0, 0.0, None, now, {"token": token_id},
               removed=True)
        for token_id in token_ids
    ]  # fmt: skip


def revoked_tokens(changes: Sequence[Change]) -> tuple[frozenset[str], list[Change]]:
    """Split a batch from the bus: the token ids it revokes, and the changes for the overlays
    (everything else on ``TOKENS_LAYER`` is dropped: it is not for clients)."""
    if all(change.layer != TOKENS_LAYER for change in changes):
        return frozenset(), list(changes)
    revoked = frozenset(
        change.key.removeprefix(_TOKEN_KEY)
        for change in changes
        if change.layer == TOKENS_LAYER and change.removed and change.key.startswith(_TOKEN_KEY)
    )
    return revoked, [change for change in changes if change.layer != TOKENS_LAYER]


class Bus(Protocol):
    def publish(self, changes: Sequence[Change]) -> None:
        """Hand committed changes to every hub; never blocks on a slow subscriber. Thread-safe."""

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every batch published from now on; returns an unsubscribe
        function. Listeners must return quickly (hand the work to their own loop)."""

    def close(self) -> None:
        """Stop delivering; release connections."""

    def position(self) -> str | None:
        """Where this process's listeners started following the bus (None: no positions)."""

    def replay(self, after: str) -> list[tuple[str, list[Change]]]:
        """Batches published after position ``after`` that the bus still holds, oldest first
        (for resuming a session another process served). Empty when the bus keeps none."""


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
                listener(changes, None)
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

    def close(self) -> None:
        with self._lock:
            self._listeners.clear()

    def position(self) -> str | None:
        return None

    def replay(self, after: str) -> list[tuple[str, list[Change]]]:
        return []


class RedisBus:
    """Changes through one Redis stream, so every server process sees every committed change.

    ``publish`` appends a batch (``XADD``, the stream capped at about ``maxlen`` entries); one
    reader thread per process follows the stream (``XREAD BLOCK``) from the moment of the first
    ``subscribe`` and calls the listeners. A process's own changes come back the same way, so
    every hub sees one order. Redis being away loses live events (logged), never data: the
    database has committed them already.
    """

    def __init__(self, url: str, stream: str = "arserver:live", maxlen: int = 100_000) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            where = urlsplit(url)  # host and port only: the URL may carry a password
            raise BusError(
                f"cannot reach Redis at {where.hostname}:{where.port or 6379}: {exc}"
            ) from exc
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self.stream = stream
        self.maxlen = maxlen
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._start: str | None = None

    def position(self) -> str | None:
        return self._start

    def publish(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        payload = json.dumps([c.to_json() for c in changes], separators=(",", ":"))
        try:
            self._redis.xadd(self.stream, {"c": payload}, maxlen=self.maxlen, approximate=True)
        except self._errors:
            log.exception("Redis is unreachable: %d live events were not sent", len(changes))

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)
            if self._reader is None:
                self._start = self._last_id()
                self._reader = threading.Thread(
                    target=self._follow, args=(self._start,), name="live-redis", daemon=True
                )
                self._reader.start()

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _last_id(self) -> str:
        newest: Any = self._redis.xrevrange(self.stream, count=1)
        return str(newest[0][0].decode()) if newest else "0-0"

    def _follow(self, last_id: str) -> None:
        while not self._stop.is_set():
            try:
                reply: Any = self._redis.xread({self.stream: last_id}, block=1000, count=500)
            except self._errors:
                log.exception("reading live events from Redis failed; retrying")
                self._stop.wait(1.0)
                continue
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    last_id = entry_id.decode()
                    changes = _decode(last_id, fields)
                    with self._lock:
                        listeners = list(self._listeners)
                    for listener in listeners:
                        try:
                            listener(changes, last_id)
                        except Exception:
                            log.exception("a live listener failed")

    def replay(self, after: str) -> list[tuple[str, list[Change]]]:
        entries: Any = self._redis.xrange(self.stream, min=f"({after}", max="+")
        return [(entry_id.decode(), _decode(entry_id, fields)) for entry_id, fields in entries]

    def close(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.join(timeout=5)
        self._redis.close()


def _decode(entry_id: Any, fields: Any) -> list[Change]:
    try:
        return [Change.from_json(c) for c in json.loads(fields[b"c"])]
    except (KeyError, TypeError, ValueError):
        log.warning("ignoring a malformed live event %s", entry_id)
        return []


class BusError(ArserverError):
    """The configured bus cannot be used (Redis unreachable at start)."""


def open_bus(settings: Settings) -> LocalBus | RedisBus:
    """Redis when ``ARSERVER_REDIS_URL`` is set, else in-process."""
    if settings.redis_url:
        return RedisBus(settings.redis_url)
    return LocalBus()
