"""The audit log's SQL: appending to the hash chain, reading, verifying, erasing actors and
purging old entries.

Every entry stores ``prev_hash`` (the ``hash`` of the entry before it) and ``hash``, the SHA-256
of a canonical encoding (:func:`entry_hash`) of its sequence number, time, actor digest,
action, object, result, origin and ``prev_hash``. The actor itself is not hashed: its salted
digest is (:func:`actor_digest`), so that clearing ``actor`` and ``actor_salt`` (erasure of a
person) keeps the chain valid while the entry can no longer be linked to that person.

The one row of ``audit_chain`` is the head (the newest entry's ``last_seq`` and ``last_hash``,
so a removed newest entry is seen) and the anchor (``anchor_seq``, ``anchor_hash``: the oldest
kept entry and the hash it must follow, moved by :func:`purge_before`). Appends and purges are
serialised across processes: on PostgreSQL by ``pg_advisory_xact_lock(LOCK_KEY)`` in the
appending transaction, on SQLite by the database's write lock, which the first statement of
that transaction (a write to the head row) takes before anything is read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, func, select, text, update
from sqlalchemy.engine import Row

from arserver.errors import ArserverError
from arserver.store.schema import audit_chain, audit_entries

log = logging.getLogger(__name__)

#: The hash the very first entry follows.
GENESIS = "0" * 64
#: The PostgreSQL advisory lock that serialises appends and purges of the audit log.
LOCK_KEY = 0x41554449
#: The version tag that starts every canonical encoding (a later encoding gets a new tag).
ENCODING = "arserver-audit-1"
#: The actor of entries the server makes itself (retention).
SYSTEM = "system"


class AuditError(ArserverError):
    """The audit log cannot be written (its chain head is missing)."""


@dataclass(frozen=True)
class NewEntry:
    """An entry to append: ``actor`` who (a token id, an ``oidc:`` subject, ``cli``,
    ``anonymous``; never a secret), ``action`` what (``POST /api/v1/assets``,
    ``token create``), ``object`` on what (an id, or None), ``result`` (an HTTP status, ``ok``
    or ``refused``), ``origin`` from where (a client network such as ``203.0.113.0/24``,
    ``local``, or None). Texts must fit their columns (200, 200, 200, 20 and 64 characters)."""

    actor: str
    action: str
    object: str | None
    result: str
    origin: str | None


@dataclass(frozen=True)
class AuditEntry:
    """A stored entry. ``at`` is timezone-aware UTC; ``actor`` and ``actor_salt`` are None once
    the actor was erased."""

    seq: int
    at: datetime
    actor: str | None
    actor_salt: str | None
    actor_digest: str
    action: str
    object: str | None
    result: str
    origin: str | None
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Problem:
    """The first entry that breaks the chain: its ``seq``, its time (None when the entry is
    missing altogether) and what is wrong."""

    seq: int
    at: datetime | None
    reason: str

    def __str__(self) -> str:
        when = f" ({self.at.isoformat()})" if self.at is not None else ""
        return f"entry {self.seq}{when}: {self.reason}"


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify`: how many entries were checked, the chain's newest hash
    (worth noting down elsewhere: a log rewritten as a whole would end in another) and the
    first problem (None: intact)."""

    count: int
    head_hash: str
    problem: Problem | None

    @property
    def intact(self) -> bool:
        return self.problem is None


@dataclass
class _Head:
    last_seq: int
    last_hash: str
    anchor_seq: int
    anchor_hash: str


def actor_digest(salt: str, actor: str) -> str:
    """The salted SHA-256 (hex) of an actor that the chain hashes instead of the actor."""
    return hashlib.sha256(f"{salt}\x00{actor}".encode()).hexdigest()


def entry_hash(
    seq: int,
    at: datetime,
    digest: str,
    action: str,
    object_: str | None,
    result: str,
    origin: str | None,
    prev_hash: str,
) -> str:
    """The SHA-256 (hex) of an entry's canonical encoding: a JSON array (ASCII, no spaces) of
    :data:`ENCODING`, the fields in this order and the time as UTC ISO 8601 with
    microseconds."""
    moment = at.astimezone(UTC).isoformat(timespec="microseconds")
    fields = [ENCODING, seq, moment, digest, action, object_, result, origin, prev_hash]
    canonical = json.dumps(fields, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _take_head(connection: Connection) -> _Head:
    """Lock the chain for this transaction and read its head."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    # A write first: on SQLite it takes the write lock before the head is read.
    connection.execute(update(audit_chain).where(audit_chain.c.id == 1).values(id=1))
    row = connection.execute(select(audit_chain).where(audit_chain.c.id == 1)).first()
    if row is None:
        raise AuditError("the audit log's chain head is missing; run 'arserver audit verify'")
    return _Head(row.last_seq, row.last_hash, row.anchor_seq, row.anchor_hash)


def _append_locked(connection: Connection, head: _Head, entry: NewEntry) -> AuditEntry:
    salt = secrets.token_hex(16)
    digest = actor_digest(salt, entry.actor)
    seq, at = head.last_seq + 1, datetime.now(UTC)
    hashed = entry_hash(
        seq, at, digest, entry.action, entry.object, entry.result, entry.origin, head.last_hash
    )
    stored = AuditEntry(
        seq, at, entry.actor, salt, digest, entry.action, entry.object, entry.result,
        entry.origin, head.last_hash, hashed,
    )  # fmt: skip
    connection.execute(audit_entries.insert().values(**stored.__dict__))
    connection.execute(
        update(audit_chain).where(audit_chain.c.id == 1).values(last_seq=seq, last_hash=hashed)
    )
    head.last_seq, head.last_hash = seq, hashed
    return stored


def append(engine: Engine, entry: NewEntry) -> AuditEntry:
    """Append ``entry`` at the end of the chain (its own transaction); the stored entry."""
    with engine.begin() as connection:
        return _append_locked(connection, _take_head(connection), entry)


def _entry(row: Row[tuple[object, ...]]) -> AuditEntry:
    return AuditEntry(**row._mapping)


def entries_after(engine: Engine, after: int, limit: int) -> list[AuditEntry]:
    """At most ``limit`` entries with ``seq`` above ``after``, oldest first."""
    query = (
        select(audit_entries)
        .where(audit_entries.c.seq > after)
        .order_by(audit_entries.c.seq)
        .limit(limit)
    )
    with engine.connect() as connection:
        return [_entry(row) for row in connection.execute(query)]


def newest_entries(engine: Engine, limit: int) -> list[AuditEntry]:
    """The ``limit`` newest entries, oldest of them first."""
    query = select(audit_entries).order_by(audit_entries.c.seq.desc()).limit(limit)
    with engine.connect() as connection:
        return [_entry(row) for row in connection.execute(query)][::-1]


def entries_of(
    connection: Connection, actors: Collection[str], limit: int | None = None
) -> list[AuditEntry]:
    """The entries whose actor is one of ``actors``, oldest first (at most ``limit``)."""
    if not actors:
        return []
    query = (
        select(audit_entries)
        .where(audit_entries.c.actor.in_(sorted(actors)))
        .order_by(audit_entries.c.seq)
        .limit(limit)
    )
    return [_entry(row) for row in connection.execute(query)]


def erase_actors(connection: Connection, actors: Collection[str]) -> int:
    """Clear ``actor`` and ``actor_salt`` of the entries of ``actors`` (their digests stay, so
    the chain still verifies); how many entries were changed."""
    if not actors:
        return 0
    changed: int = connection.execute(
        update(audit_entries)
        .where(audit_entries.c.actor.in_(sorted(actors)))
        .values(actor=None, actor_salt=None)
    ).rowcount
    return changed


def purge_before(connection: Connection, cutoff: datetime) -> int:
    """Delete the oldest entries up to the first one made at or after ``cutoff`` (a prefix of
    the chain, so that clocks of several servers that disagree a little cannot leave a hole),
    move the anchor to the oldest kept entry and append an entry that says what was purged;
    how many entries were deleted. Runs on the caller's open transaction. A log without its
    chain head is not purged (logged; ``verify`` reports it) rather than failing the caller,
    the retention loop of every kind of data."""
    try:
        head = _take_head(connection)
    except AuditError:
        log.error(
            "the audit log's chain head is missing: not purging it; run 'arserver audit verify'"
        )
        return 0
    first_kept = connection.execute(
        select(func.min(audit_entries.c.seq)).where(audit_entries.c.at >= cutoff)
    ).scalar()
    keep_from = int(first_kept) if first_kept is not None else head.last_seq + 1
    if keep_from <= head.anchor_seq:
        return 0
    anchor_hash = head.last_hash
    if first_kept is not None:
        anchor_hash = connection.execute(
            select(audit_entries.c.prev_hash).where(audit_entries.c.seq == keep_from)
        ).scalar_one()
    deleted: int = connection.execute(
        delete(audit_entries).where(audit_entries.c.seq < keep_from)
    ).rowcount
    connection.execute(
        update(audit_chain)
        .where(audit_chain.c.id == 1)
        .values(anchor_seq=keep_from, anchor_hash=anchor_hash)
    )
    if deleted:
        note = NewEntry(
            SYSTEM, "audit purge", f"entries {head.anchor_seq} to {keep_from - 1}", "ok", "local"
        )
        _append_locked(connection, head, note)
    return deleted


def _rows(connection: Connection, page: int) -> Iterator[AuditEntry]:
    after: int | None = None
    while True:
        query = select(audit_entries).order_by(audit_entries.c.seq).limit(page)
        if after is not None:
            query = query.where(audit_entries.c.seq > after)
        rows = [_entry(row) for row in connection.execute(query)]
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1].seq


def _defect(entry: AuditEntry, expected_seq: int, prev: str) -> str | None:
    """What is wrong with ``entry`` where entry ``expected_seq`` following ``prev`` belongs."""
    if entry.seq < expected_seq:
        return "it lies before the oldest entry the chain keeps (inserted, or purged and put back)"
    if entry.seq > expected_seq:
        return f"entries {expected_seq} to {entry.seq - 1} before it are missing"
    if entry.prev_hash != prev:
        return "it does not follow the entry before it (an entry was removed, inserted or moved)"
    if (entry.actor is None) != (entry.actor_salt is None) or (
        entry.actor is not None
        and entry.actor_salt is not None
        and actor_digest(entry.actor_salt, entry.actor) != entry.actor_digest
    ):
        return "its actor was changed"
    recomputed = entry_hash(
        entry.seq, entry.at, entry.actor_digest, entry.action, entry.object, entry.result,
        entry.origin, entry.prev_hash,
    )  # fmt: skip
    if recomputed != entry.hash:
        return "it was changed"
    return None


def verify(engine: Engine, page: int = 1000) -> Verification:
    """Check the whole chain, ``page`` entries in memory at a time: every kept entry follows
    the anchor or the entry before it, hashes to its ``hash``, has a consistent actor digest,
    and the newest is the head's. Reports the first entry that does not."""
    with engine.connect() as connection:
        row = connection.execute(select(audit_chain).where(audit_chain.c.id == 1)).first()
        if row is None:
            return Verification(0, "", Problem(0, None, "the chain head is missing"))
        head = _Head(row.last_seq, row.last_hash, row.anchor_seq, row.anchor_hash)
        expected, prev, count = head.anchor_seq, head.anchor_hash, 0
        last: AuditEntry | None = None
        for entry in _rows(connection, page):
            defect = _defect(entry, expected, prev)
            if defect is not None:
                return Verification(count, prev, Problem(entry.seq, entry.at, defect))
            expected, prev, count, last = entry.seq + 1, entry.hash, count + 1, entry
    if expected - 1 < head.last_seq:
        missing = Problem(expected, None, f"missing (the chain's newest is {head.last_seq})")
        return Verification(count, prev, missing)
    if last is not None and (last.seq > head.last_seq or last.hash != head.last_hash):
        reason = f"the chain's newest entry is {head.last_seq}: this one was added or changed"
        return Verification(count, prev, Problem(last.seq, last.at, reason))
    if last is None and prev != head.last_hash:
        return Verification(count, prev, Problem(expected, None, "the chain head was changed"))
    return Verification(count, prev, None)
