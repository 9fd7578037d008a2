"""Session mirrors: what a live session sent, and where it stood, kept in Redis so that a
client can resume on any server process (``ARSERVER_REDIS_URL``).

Per session, with the retention window as time-to-live: a hash (owner, seq, checkpoint = the
bus position up to which everything it was offered has been sent, subscriptions) and a list of
the messages it sent. Writes are queued by the hub and flushed by one thread every
``interval_s`` in a pipeline, so the event loop never waits for Redis; a process killed
between two flushes loses at most that interval of mirror, and a resume elsewhere then answers
``recovered: false`` rather than guess.

The mirror holds personal data: the subscriptions are the areas and frame origins a client
asked for (where its user stands) and the sent messages are in its frame. So Redis never sees
them in clear: both are encrypted (AES-256-GCM) with a key derived from the session id, and the
session's keys are named by another hash of it. The id is 128 random bits that only the client
keeps (and a server process, in memory, while the session is open), so whoever reads Redis (a
dump, a replica, an operator) learns neither where a user stood nor what they were sent; the
owner (a token id) and the counters stay readable, for the server to check a resume.
It lives in Redis for as long as the session is used and ``retention_s`` after (each write sets
the time-to-live again), and nowhere else. Logs name a session only by :func:`session_ref`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
from dataclasses import dataclass
from typing import Any, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

PREFIX = "arserver:live:session:"
#: The fields of a session's hash that are encrypted (the others are counters and owners).
SECRET_FIELDS = frozenset({"subscriptions"})
_NONCE_BYTES = 12


def session_key(session_id: str) -> str:
    """The Redis key of a session's hash (its sent messages are under this plus ``:sent``):
    named by a hash of the id, so the key does not give the id away."""
    digest = hashlib.sha256(b"arserver live session name\0" + session_id.encode("utf-8", "replace"))
    return PREFIX + digest.hexdigest()[:32]


def _cipher(session_id: str) -> AESGCM:
    key = hashlib.sha256(b"arserver live session key\0" + session_id.encode("utf-8", "replace"))
    return AESGCM(key.digest())


def seal(session_id: str, where: str, plain: str) -> bytes:
    """``plain`` encrypted for the mirror: a random nonce and the AES-GCM ciphertext, bound to
    ``where`` (the field or list it is stored in) so that it cannot be moved elsewhere."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + _cipher(session_id).encrypt(nonce, plain.encode("utf-8"), where.encode())


def unseal(session_id: str, where: str, sealed: bytes) -> str:
    """The text :func:`seal` encrypted; :class:`ValueError` if it was not sealed for this
    session and place (or was changed)."""
    try:
        plain = _cipher(session_id).decrypt(
            sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], where.encode()
        )
    except InvalidTag:
        raise ValueError("not sealed for this session") from None
    return plain.decode("utf-8")


def session_ref(session_id: str) -> str:
    """A short reference to a session for logs: the first 8 hex digits of the SHA-256 of its
    id. It tells the lines of one session apart but cannot be turned back into the id, which
    resumes the session (the id is 128 random bits)."""
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()[:8]


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
        the keys given change) and the messages it just sent. Never blocks; the encryption
        happens in the flushing thread."""
        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
        self._queue.put((session_id, fields, [json.dumps(entry) for entry in sent]))

    def seq_of(self, session_id: str) -> int | None:
        """The last seq any process mirrored for ``session_id`` (None: unknown)."""
        self.flush()
        try:
            value: Any = self._redis.hget(session_key(session_id), "seq")
        except self._errors:
            return None
        return int(value) if value else None

    def load(self, session_id: str) -> StoredSession | None:
        """What another process mirrored of ``session_id`` (None: unknown or expired)."""
        self.flush()
        key = session_key(session_id)
        try:
            pipe = self._redis.pipeline()
            pipe.hgetall(key)
            pipe.lrange(key + ":sent", 0, -1)
            meta, sent = pipe.execute()
        except self._errors:
            log.exception("cannot read live session %s from Redis", session_ref(session_id))
            return None
        if not meta or b"owner" not in meta:
            return None
        checkpoint = meta.get(b"checkpoint")
        try:
            return StoredSession(
                owner=meta[b"owner"].decode(),
                seq=int(meta.get(b"seq", b"0")),
                checkpoint=checkpoint.decode() if checkpoint else None,
                subscriptions=json.loads(
                    unseal(session_id, "subscriptions", meta[b"subscriptions"])
                    if b"subscriptions" in meta
                    else "[]"
                ),
                history=[_entry(json.loads(unseal(session_id, "sent", e))) for e in sent],
            )
        except (ValueError, TypeError, IndexError, UnicodeDecodeError):
            log.warning(
                "live session %s in Redis is unreadable; starting afresh", session_ref(session_id)
            )
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
            key = session_key(session_id)
            if fields:
                stored: dict[str, str | bytes] = {
                    name: seal(session_id, name, value) if name in SECRET_FIELDS else value
                    for name, value in fields.items()
                }
                pipe.hset(key, mapping=cast(Any, stored))
                pipe.pexpire(key, self.ttl_ms)
            if sent:
                pipe.rpush(key + ":sent", *(seal(session_id, "sent", entry) for entry in sent))
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
