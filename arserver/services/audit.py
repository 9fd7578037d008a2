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
import re
import threading
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


class AuditService:
    """The audit log of one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._failures = 0

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

    def page(self, after: int = 0, limit: int = 100) -> list[AuditEntry]:
        """Entries after ``seq`` ``after``, oldest first, at most ``limit`` (capped at
        :data:`MAX_PAGE`)."""
        return repository.entries_after(self.engine, after, max(1, min(limit, MAX_PAGE)))

    def newest(self, limit: int) -> list[AuditEntry]:
        """The ``limit`` newest entries, oldest of them first."""
        return repository.newest_entries(self.engine, max(1, limit))

    def verify(self) -> Verification:
        """Check the whole chain (see :func:`arserver.store.audit.verify`)."""
        return repository.verify(self.engine)

    def purge(self, older_than: timedelta) -> int:
        """Delete the entries older than ``older_than`` (keeping the chain verifiable); how
        many were deleted. The server's retention loop does this by itself."""
        with self.engine.begin() as connection:
            return repository.purge_before(connection, datetime.now(UTC) - older_than)
