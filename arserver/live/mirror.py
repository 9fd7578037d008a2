"""Session mirrors: what a live session sent, and where it stood, kept in Redis so that a
client can resume on any server process (``ARSERVER_REDIS_URL``).

Per session, with the retention window as time-to-live: a hash (owner, seq, checkpoint = the
bus position up to which everything it was offered has been sent, subscriptions) and a list of
the messages it sent. Writes are queued by the hub and flushed by one thread every
``interval_s`` in a pipeline, so the event loop never waits for Redis; a process killed
between two flushes loses at most that interval of mirror, and a resume elsewhere then answers
``recovered: false`` rather than guess.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, cast

log = logging.getLogger(__name__)

PREFIX = "arserver:live:session:"


@dataclass(frozen=True)
class StoredSession:
    owner: str
    seq: int
    checkpoint: str | None
    subscriptions: list[dict[str, Any]]
    history: list[tuple[int, float, str]]


class RedisSessionMirror:
    def __init__(self, url: str, retention_s: float, interval_s: float = 0.02) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self.ttl_ms = int(retention_s * 1000)
        self.interval_s = interval_s
        self._queue: queue.SimpleQueue[tuple[str, dict[str, str], list[str]]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="live-mirror", daemon=True)
        self._thread.start()

    def record(
        self,
        session_id: str,
        meta: dict[str, Any],
        sent: list[tuple[int, float, str]],
    ) -> None:
        """Queue a session's new state (``meta``: owner, seq, checkpoint, subscriptions; only
        the keys given change) and the messages it just sent. Never blocks."""
        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
        self._queue.put((session_id, fields, [json.dumps(entry) for entry in sent]))

    def seq_of(self, session_id: str) -> int | None:
        """The last seq any process mirrored for ``session_id`` (None: unknown)."""
        self.flush()
        try:
            value: Any = self._redis.hget(PREFIX + session_id, "seq")
        except self._errors:
            return None
        return int(value) if value else None

    def load(self, session_id: str) -> StoredSession | None:
        """What another process mirrored of ``session_id`` (None: unknown or expired)."""
        self.flush()
        try:
            pipe = self._redis.pipeline()
            pipe.hgetall(PREFIX + session_id)
            pipe.lrange(PREFIX + session_id + ":sent", 0, -1)
            meta, sent = pipe.execute()
        except self._errors:
            log.exception("cannot read live session %s from Redis", session_id)
            return None
        if not meta or b"owner" not in meta:
            return None
        checkpoint = meta.get(b"checkpoint")
        try:
            return StoredSession(
                owner=meta[b"owner"].decode(),
                seq=int(meta.get(b"seq", b"0")),
                checkpoint=checkpoint.decode() if checkpoint else None,
                subscriptions=json.loads(meta.get(b"subscriptions", b"[]")),
                history=[_entry(json.loads(entry)) for entry in sent],
            )
        except (ValueError, TypeError, IndexError, UnicodeDecodeError):
            log.warning("live session %s in Redis is unreadable; starting afresh", session_id)
            return None

    def flush(self) -> None:
        """Write everything queued so far (also called by the thread), in order."""
        with self._flush_lock:
            self._flush()

    def _flush(self) -> None:
        batch = []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not batch:
            return
        pipe = self._redis.pipeline(transaction=False)
        for session_id, fields, sent in batch:
            key = PREFIX + session_id
            if fields:
                pipe.hset(key, mapping=cast(Any, fields))
                pipe.pexpire(key, self.ttl_ms)
            if sent:
                pipe.rpush(key + ":sent", *sent)
                pipe.ltrim(key + ":sent", -2000, -1)
                pipe.pexpire(key + ":sent", self.ttl_ms)
        try:
            pipe.execute()
        except self._errors:
            log.exception("mirroring %d live session updates to Redis failed", len(batch))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()
        self._redis.close()


def _entry(value: list[Any]) -> tuple[int, float, str]:
    return int(value[0]), float(value[1]), str(value[2])
