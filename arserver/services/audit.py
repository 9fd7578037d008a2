"""The write path of the audit log (BIO logging measures): every entry, from the HTTP
middleware (``arserver.api.audit``), the commands and the other services, goes through
:meth:`AuditService.record`.

Entries never hold a secret: texts are passed through the log redaction
(:func:`~arserver.security.redaction.redact_text`: token secrets, ``Authorization`` values and
lists of coordinates are replaced), control characters become ``?`` and each text is cut to
its column. A failed write is logged at ERROR level and counted (:attr:`AuditService.failures`)
and never raised: the change it describes has happened already, and refusing to answer would
not undo it.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from arserver.security.redaction import redact_text
from arserver.store import audit as repository
from arserver.store.audit import AuditEntry, NewEntry, Verification

log = logging.getLogger(__name__)

#: The actor of the command line (``arserver token create``, ...), and its origin.
CLI_ACTOR = "cli"
LOCAL_ORIGIN = "local"
#: The actor of a request without any token.
ANONYMOUS = "anonymous"
#: Most entries one page of the log returns (``GET /api/v1/audit``).
MAX_PAGE = 1000

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def clean(value: str | None, limit: int) -> str | None:
    """``value`` as an entry may hold it: redacted, printable, at most ``limit`` characters."""
    if value is None:
        return None
    text = _UNPRINTABLE.sub("?", redact_text(_UNPRINTABLE.sub("?", value)))
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RefusalSummary:
    """Refusals of requests that presented no credential at all, counted in memory instead of
    one entry each (anyone can send them, as fast as they like): per client network, at most
    one summary entry per ``interval_s`` (seconds), and at most ``max_entries`` of them per
    interval over all networks; at most ``max_networks`` networks are held (the least recently
    seen is forgotten, its pending count stays in :attr:`total` only). Thread-safe."""

    def __init__(
        self,
        interval_s: float = 60.0,
        max_entries: int = 100,
        max_networks: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self.max_entries = max_entries
        self.max_networks = max_networks
        self._clock = clock
        self._lock = threading.Lock()
        self._networks: OrderedDict[str, list[float]] = OrderedDict()  # [last entry, pending]
        self._window_start = -math.inf
        self._window_entries = 0
        self._total = 0

    @property
    def total(self) -> int:
        """Every such refusal since the service started."""
        return self._total

    def note(self, network: str) -> int | None:
        """Count one refusal from ``network``: the number of refusals from it to record now in
        one entry (this one and those since its last entry), or None when none is due."""
        with self._lock:
            now = self._clock()
            self._total += 1
            if now - self._window_start >= self.interval_s:
                self._window_start, self._window_entries = now, 0
            state = self._networks.get(network)
            if state is None:
                if len(self._networks) >= self.max_networks:
                    self._networks.popitem(last=False)
                state = self._networks[network] = [-math.inf, 0.0]
            else:
                self._networks.move_to_end(network)
            state[1] += 1
            if now - state[0] < self.interval_s or self._window_entries >= self.max_entries:
                return None
            pending = int(state[1])
            state[0], state[1] = now, 0.0
            self._window_entries += 1
            return pending


class AuditService:
    """The audit log of one database, with the audit key bound to its engine (see
    :func:`arserver.store.audit.bind_key`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._failures = 0
        #: Refusals of requests without any credential (see :class:`RefusalSummary`).
        self.anonymous_refusals = RefusalSummary()

    @property
    def failures(self) -> int:
        """How many entries could not be written since this service started."""
        return self._failures

    def record(
        self,
        actor: str,
        action: str,
        object_: str | None = None,
        result: str = "ok",
        origin: str | None = LOCAL_ORIGIN,
    ) -> AuditEntry | None:
        """Append one entry (see :class:`~arserver.store.audit.NewEntry` for the fields); the
        stored entry, or None when it could not be written (logged and counted). Blocks on
        the database: call it from a thread, never on the event loop."""
        entry = NewEntry(
            actor=clean(actor, 200) or ANONYMOUS,
            action=clean(action, 200) or "?",
            object=clean(object_, 200),
            result=clean(result, 20) or "?",
            origin=clean(origin, 64),
        )
        try:
            return repository.append(self.engine, entry)
        except Exception:
            with self._lock:
                self._failures += 1
            log.error(
                "AUDIT LOG WRITE FAILED: the entry for %r (%s) is lost; %d lost so far",
                entry.action, entry.result, self._failures, exc_info=True,
            )  # fmt: skip
            return None

    def page(self, after: int = 0, limit: int = 100, actor: str | None = None) -> list[AuditEntry]:
        """Entries after ``seq`` ``after``, oldest first, at most ``limit`` (capped at
        :data:`MAX_PAGE`); only those of ``actor`` when given."""
        return repository.entries_after(self.engine, after, max(1, min(limit, MAX_PAGE)), actor)

    def newest(self, limit: int) -> list[AuditEntry]:
        """The ``limit`` newest entries, oldest of them first."""
        return repository.newest_entries(self.engine, max(1, limit))

    def verify(self, expect: tuple[int, str] | None = None) -> Verification:
        """Check the whole chain, and that entry ``expect`` (seq, hash) is still there
        unchanged (see :func:`arserver.store.audit.verify`)."""
        return repository.verify(self.engine, expect)

    def seal(self) -> Verification:
        """Key a log written without the audit key (see :func:`arserver.store.audit.seal`)."""
        return repository.seal(self.engine)

    def subject_digest(self, subject: str) -> str:
        """What stands for a privacy subject in the log (see
        :func:`arserver.store.audit.subject_digest`)."""
        with self.engine.connect() as connection:
            return repository.subject_digest(connection, subject)

    def purge(self, older_than: timedelta) -> int:
        """Delete the entries older than ``older_than`` (keeping the chain verifiable); how
        many were deleted. The server's retention loop does this by itself."""
        with self.engine.begin() as connection:
            return repository.purge_before(connection, datetime.now(UTC) - older_than)
