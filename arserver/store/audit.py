"""The audit log's SQL: appending to the hash chain, reading, verifying, erasing actors and
purging old entries.

Every entry stores ``prev_hash`` (the ``hash`` of the entry before it) and ``hash``, computed
over a canonical encoding (:func:`entry_hash`) of its sequence number, time, actor digest,
action, object, result, origin and ``prev_hash``. The actor itself is not hashed: its salted
digest is (:func:`actor_digest`), so that clearing ``actor`` (erasure of a person) keeps the
chain valid while the entry can no longer be linked to that person.

The one row of ``audit_chain`` is the head (the newest entry's ``last_seq`` and ``last_hash``,
so a removed newest entry is seen) and the anchor (``anchor_seq``, ``anchor_hash``: the oldest
kept entry and the hash it must follow, moved by :func:`purge_before`, which records each move
as an ``audit purge`` entry that :func:`verify` checks the anchor against).

**The audit key** (``audit_key``, kept outside the database and bound to an engine with
:func:`bind_key`): from the row's ``keyed_from`` on, entry hashes are HMAC-SHA256 under the key
instead of SHA-256, the head row carries ``mac`` (an HMAC of its head, anchor and
``keyed_from``), and an erased actor leaves a mark (:func:`erasure_mark`) in ``actor_salt``.
Someone who can write the database but lacks the key can then neither recompute a hash, nor
move the head or the anchor, nor clear an actor without it being found. A log with entries
gets the key by :func:`seal` (after a plain verification); an empty one at its first append.
Once keyed, appends without the key are refused (:class:`AuditError`).

Appends and purges are serialised across processes: on PostgreSQL by
``pg_advisory_xact_lock(LOCK_KEY)`` in the appending transaction, on SQLite by the database's
write lock, which the first statement of that transaction (a write to the head row) takes
before anything is read. :func:`verify` reads the head and every entry in one snapshot
(PostgreSQL ``REPEATABLE READ``, one SQLite read transaction), so appends and purges running
meanwhile are not mistaken for tampering.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import weakref
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    bindparam,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Row

from arserver.errors import ArserverError
from arserver.store.schema import audit_chain, audit_entries
from arserver.store.snapshot import snapshot

log = logging.getLogger(__name__)

#: The hash the very first entry follows.
GENESIS = "0" * 64
#: The PostgreSQL advisory lock that serialises appends and purges of the audit log.
LOCK_KEY = 0x41554449
#: The version tag that starts every canonical encoding (a later encoding gets a new tag).
ENCODING = "arserver-audit-1"
#: The actor of entries the server makes itself (retention).
SYSTEM = "system"
#: The action of the entry a purge appends; its object is ``entries FIRST to LAST``.
PURGE_ACTION = "audit purge"
#: Entries erased (or read for an export) per statement.
BATCH = 1000

_PURGED = re.compile(r"^entries (\d+) to (\d+)$")
_KEYS: weakref.WeakKeyDictionary[Engine, bytes] = weakref.WeakKeyDictionary()


class AuditError(ArserverError):
    """The audit log cannot be written: its chain head is missing or does not match its MAC,
    or the log is keyed and no key (or another key) is configured."""


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
    """A stored entry. ``at`` is timezone-aware UTC; ``actor`` is None once the actor was
    erased (``actor_salt`` is then None, or the erasure's mark in a keyed log)."""

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
    """The outcome of :func:`verify`: how many entries were checked, the newest checked
    entry's ``head_seq`` and ``head_hash`` (worth noting down elsewhere and passing back as
    ``expect``: a log rewritten or cut short would no longer hold it), whether the log is
    keyed, and the first problem (None: intact)."""

    count: int
    head_seq: int
    head_hash: str
    problem: Problem | None
    keyed: bool = False

    @property
    def intact(self) -> bool:
        return self.problem is None


@dataclass
class _Head:
    last_seq: int
    last_hash: str
    anchor_seq: int
    anchor_hash: str
    keyed_from: int | None
    mac: str | None
    subject_salt: str


def bind_key(engine: Engine, secret: str | None) -> None:
    """Use ``secret`` (the ``audit_key`` setting; None: no key) for every audit write and
    check on ``engine``, by whichever code holds the engine."""
    if secret:
        _KEYS[engine] = secret.encode("utf-8")
    else:
        _KEYS.pop(engine, None)


def key_of(engine: Engine) -> bytes | None:
    """The audit key bound to ``engine`` (None: none)."""
    return _KEYS.get(engine)


def _mac(key: bytes | None, fields: list[object]) -> str:
    canonical = json.dumps(fields, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    if key is None:
        return hashlib.sha256(canonical).hexdigest()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


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
    *,
    key: bytes | None = None,
) -> str:
    """The hash (hex) of an entry's canonical encoding: a JSON array (ASCII, no spaces) of
    :data:`ENCODING`, the fields in this order and the time as UTC ISO 8601 with
    microseconds; SHA-256, or HMAC-SHA256 under ``key``."""
    moment = at.astimezone(UTC).isoformat(timespec="microseconds")
    return _mac(key, [ENCODING, seq, moment, digest, action, object_, result, origin, prev_hash])


def head_mac(key: bytes, head: _Head) -> str:
    """The HMAC-SHA256 (hex) of the head row: head, anchor and ``keyed_from``."""
    fields: list[object] = [f"{ENCODING}-head", head.last_seq, head.last_hash]
    fields += [head.anchor_seq, head.anchor_hash, head.keyed_from]
    return _mac(key, fields)


def erasure_mark(key: bytes, seq: int, digest: str) -> str:
    """What an erasure under ``key`` writes into ``actor_salt`` of entry ``seq`` (32 hex
    digits): proof that the actor was cleared by an erasure, that links to nobody."""
    return _mac(key, [f"{ENCODING}-erased", seq, digest])[:32]


def subject_digest(connection: Connection, subject: str) -> str:
    """32 hex digits that stand for a privacy subject in the log: HMAC-SHA256 of ``subject``
    under the audit key, or without one under the database's own random ``subject_salt``.
    The same subject always gives the same digest, so an auditor who knows the subject of a
    request finds its execution; the digest alone names nobody."""
    salt = connection.execute(select(audit_chain.c.subject_salt)).scalar()
    key = key_of(connection.engine) or (salt or "").encode("ascii")
    message = f"{ENCODING}-subject\x00{subject}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def _head_of(row: Row[tuple[object, ...]]) -> _Head:
    return _Head(
        row.last_seq, row.last_hash, row.anchor_seq, row.anchor_hash, row.keyed_from, row.mac,
        row.subject_salt,
    )  # fmt: skip


def _take_head(connection: Connection) -> _Head:
    """Lock the chain for this transaction and read its head."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    # A write first: on SQLite it takes the write lock before the head is read.
    connection.execute(update(audit_chain).where(audit_chain.c.id == 1).values(id=1))
    row = connection.execute(select(audit_chain).where(audit_chain.c.id == 1)).first()
    if row is None:
        raise AuditError("the audit log's chain head is missing; run 'arserver audit verify'")
    return _head_of(row)


def _check_writable(head: _Head, key: bytes | None) -> None:
    """Refuse to extend a head that this process cannot extend without laundering it."""
    if head.keyed_from is not None and key is None:
        raise AuditError("the audit log is keyed: set the same audit_key for every process")
    if key is None:
        return
    if head.mac is None:
        if head.last_seq > 0 or head.anchor_seq != 1:
            raise AuditError(
                "the audit log was written without the audit key: run 'arserver audit seal'"
            )
    elif not hmac.compare_digest(head.mac, head_mac(key, head)):
        raise AuditError(
            "the audit log's chain head does not match its MAC (another audit_key, or it was "
            "changed); run 'arserver audit verify'"
        )


def _write_head(connection: Connection, head: _Head, key: bytes | None) -> None:
    head.mac = head_mac(key, head) if key is not None and head.keyed_from is not None else None
    connection.execute(
        update(audit_chain)
        .where(audit_chain.c.id == 1)
        .values(
            last_seq=head.last_seq, last_hash=head.last_hash, anchor_seq=head.anchor_seq,
            anchor_hash=head.anchor_hash, keyed_from=head.keyed_from, mac=head.mac,
        )
    )  # fmt: skip


def _append_locked(
    connection: Connection, head: _Head, entry: NewEntry, key: bytes | None
) -> AuditEntry:
    salt = secrets.token_hex(16)
    digest = actor_digest(salt, entry.actor)
    seq, at = head.last_seq + 1, datetime.now(UTC)
    if key is not None and head.keyed_from is None:
        head.keyed_from = seq
    hashed = entry_hash(
        seq, at, digest, entry.action, entry.object, entry.result, entry.origin,
        head.last_hash, key=key,
    )  # fmt: skip
    stored = AuditEntry(
        seq, at, entry.actor, salt, digest, entry.action, entry.object, entry.result,
        entry.origin, head.last_hash, hashed,
    )  # fmt: skip
    connection.execute(audit_entries.insert().values(**stored.__dict__))
    head.last_seq, head.last_hash = seq, hashed
    _write_head(connection, head, key)
    return stored


def append(engine: Engine, entry: NewEntry) -> AuditEntry:
    """Append ``entry`` at the end of the chain (its own transaction, with the engine's key);
    the stored entry. :class:`AuditError` when the log cannot be extended."""
    key = key_of(engine)
    with engine.begin() as connection:
        head = _take_head(connection)
        _check_writable(head, key)
        return _append_locked(connection, head, entry, key)


def seal(engine: Engine) -> Verification:
    """Give a log written without a key the engine's key: verify it as it is and, when
    intact, key every entry from the next one on and seal the head. Idempotent; the
    verification (its problem when the log is not intact, and nothing is sealed)."""
    key = key_of(engine)
    if key is None:
        raise AuditError("sealing the audit log needs the audit_key setting")
    with engine.begin() as connection:
        head = _take_head(connection)
        if head.mac is not None or (head.last_seq == 0 and head.anchor_seq == 1):
            _check_writable(head, key)
        else:
            checked = _verify_on(connection, None, None)
            if not checked.intact:
                return checked
            head.keyed_from = head.last_seq + 1
            _write_head(connection, head, key)
    return verify(engine)


def _entry(row: Row[tuple[object, ...]]) -> AuditEntry:
    return AuditEntry(**row._mapping)


def _actor_is(actors: Collection[str], prefixes: Collection[str]) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    if actors:
        conditions.append(audit_entries.c.actor.in_(sorted(actors)))
    conditions += [audit_entries.c.actor.startswith(p, autoescape=True) for p in sorted(prefixes)]
    return or_(*conditions)


def entries_after(
    engine: Engine, after: int, limit: int, actor: str | None = None
) -> list[AuditEntry]:
    """At most ``limit`` entries with ``seq`` above ``after``, oldest first; only those of
    ``actor`` when given."""
    query = (
        select(audit_entries)
        .where(audit_entries.c.seq > after)
        .order_by(audit_entries.c.seq)
        .limit(limit)
    )
    if actor is not None:
        query = query.where(audit_entries.c.actor == actor)
    with engine.connect() as connection:
        return [_entry(row) for row in connection.execute(query)]


def newest_entries(engine: Engine, limit: int) -> list[AuditEntry]:
    """The ``limit`` newest entries, oldest of them first."""
    query = select(audit_entries).order_by(audit_entries.c.seq.desc()).limit(limit)
    with engine.connect() as connection:
        return [_entry(row) for row in connection.execute(query)][::-1]


def entries_of(
    connection: Connection,
    actors: Collection[str],
    limit: int,
    prefixes: Collection[str] = (),
) -> list[AuditEntry]:
    """The ``limit`` newest entries whose actor is one of ``actors`` or starts with one of
    ``prefixes``, oldest of them first."""
    if not actors and not prefixes:
        return []
    query = (
        select(audit_entries)
        .where(_actor_is(actors, prefixes))
        .order_by(audit_entries.c.seq.desc())
        .limit(limit)
    )
    return [_entry(row) for row in connection.execute(query)][::-1]


def count_of(
    connection: Connection, actors: Collection[str], prefixes: Collection[str] = ()
) -> int:
    """How many entries :func:`entries_of` chooses from."""
    if not actors and not prefixes:
        return 0
    query = select(func.count()).select_from(audit_entries).where(_actor_is(actors, prefixes))
    return int(connection.execute(query).scalar_one())


def erase_actors(
    connection: Connection, actors: Collection[str], prefixes: Collection[str] = ()
) -> int:
    """Clear ``actor`` of the entries of ``actors`` (or of an actor that starts with one of
    ``prefixes``) and replace ``actor_salt`` by None, or in a keyed log by the
    :func:`erasure_mark`; their digests stay, so the chain still verifies. How many entries
    were changed; :data:`BATCH` at a time, so memory stays bounded."""
    if not actors and not prefixes:
        return 0
    key = key_of(connection.engine)
    chosen = _actor_is(actors, prefixes)
    if key is None:
        changed: int = connection.execute(
            update(audit_entries).where(chosen).values(actor=None, actor_salt=None)
        ).rowcount
        return changed
    marked = (
        update(audit_entries)
        .where(audit_entries.c.seq == bindparam("entry_seq"))
        .values(actor=None, actor_salt=bindparam("mark"))
    )
    total, after = 0, 0
    while True:
        batch = connection.execute(
            select(audit_entries.c.seq, audit_entries.c.actor_digest)
            .where(chosen, audit_entries.c.seq > after)
            .order_by(audit_entries.c.seq)
            .limit(BATCH)
        ).all()
        if not batch:
            return total
        marks = [{"entry_seq": s, "mark": erasure_mark(key, s, d)} for s, d in batch]
        connection.execute(marked, marks)
        total, after = total + len(batch), batch[-1][0]


def purge_before(connection: Connection, cutoff: datetime) -> int:
    """Delete the oldest entries up to the first one made at or after ``cutoff`` (a prefix of
    the chain, so that clocks of several servers that disagree a little cannot leave a hole),
    move the anchor to the oldest kept entry and append an ``audit purge`` entry that says
    what was purged; how many entries were deleted. Runs on the caller's open transaction,
    with the engine's key. A log without its chain head, or one this process cannot extend,
    is not purged (logged; ``verify`` reports it) rather than failing the caller, the
    retention loop of every kind of data."""
    key = key_of(connection.engine)
    try:
        head = _take_head(connection)
        _check_writable(head, key)
    except AuditError as exc:
        log.error("not purging the audit log: %s", exc)
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
    first_purged = head.anchor_seq
    head.anchor_seq, head.anchor_hash = keep_from, anchor_hash
    note = NewEntry(
        SYSTEM, PURGE_ACTION, f"entries {first_purged} to {keep_from - 1}", "ok", "local"
    )
    _append_locked(connection, head, note, key)
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


def _actor_defect(entry: AuditEntry, key: bytes | None, keyed: bool) -> str | None:
    if entry.actor is None:
        if entry.actor_salt is None:
            return "its actor was removed without an erasure" if keyed and key else None
        if key is not None and not hmac.compare_digest(
            entry.actor_salt, erasure_mark(key, entry.seq, entry.actor_digest)
        ):
            return "its actor was removed without an erasure"
        return None
    if entry.actor_salt is None or actor_digest(entry.actor_salt, entry.actor) != (
        entry.actor_digest
    ):
        return "its actor was changed"
    return None


def _defect(
    entry: AuditEntry, expected_seq: int, prev: str, key: bytes | None, keyed_from: int | None
) -> str | None:
    """What is wrong with ``entry`` where entry ``expected_seq`` following ``prev`` belongs."""
    if entry.seq < expected_seq:
        return "it lies before the oldest entry the chain keeps (inserted, or purged and put back)"
    if entry.seq > expected_seq:
        return f"entries {expected_seq} to {entry.seq - 1} before it are missing"
    if entry.prev_hash != prev:
        return "it does not follow the entry before it (an entry was removed, inserted or moved)"
    keyed = keyed_from is not None and entry.seq >= keyed_from
    actor = _actor_defect(entry, key, keyed)
    if actor is not None:
        return actor
    if keyed and key is None:
        return "it is keyed: set audit_key to verify it"
    recomputed = entry_hash(
        entry.seq, entry.at, entry.actor_digest, entry.action, entry.object, entry.result,
        entry.origin, entry.prev_hash, key=key if keyed else None,
    )  # fmt: skip
    if not hmac.compare_digest(recomputed, entry.hash):
        return "it was changed"
    return None


def _head_problem(head: _Head, key: bytes | None) -> Problem | None:
    if key is None:
        return None
    if head.mac is None:
        if head.last_seq == 0 and head.anchor_seq == 1 and head.keyed_from is None:
            return None
        reason = (
            "the chain head carries no MAC: the log was never sealed with the audit key "
            "('arserver audit seal'), or it was rewritten"
        )
        return Problem(head.last_seq, None, reason)
    if not hmac.compare_digest(head.mac, head_mac(key, head)):
        reason = "the chain head was changed, or another audit_key is set (its MAC does not match)"
        return Problem(head.last_seq, None, reason)
    return None


def _anchor_problem(head: _Head, purge: AuditEntry | None) -> Problem | None:
    if head.anchor_seq <= 1:
        if head.anchor_seq == 1 and head.anchor_hash == GENESIS:
            return None
        return Problem(1, None, "the chain's anchor was changed")
    found = _PURGED.match(purge.object or "") if purge is not None else None
    if found is None or int(found.group(2)) != head.anchor_seq - 1:
        reason = f"entries before {head.anchor_seq} were removed without a purge entry that says so"
        return Problem(head.anchor_seq, None, reason)
    return None


def verify(engine: Engine, expect: tuple[int, str] | None = None, page: int = 1000) -> Verification:
    """Check the whole chain in one snapshot, ``page`` entries in memory at a time, with the
    engine's key: every kept entry follows the anchor or the entry before it, hashes to its
    ``hash``, has a consistent actor (or an erasure's mark), the newest is the head's, the
    anchor was moved by the newest purge entry, and in a keyed log the head's MAC holds.
    ``expect`` (seq, hash): that entry must still be there unchanged. Reports the first
    problem."""
    with snapshot(engine) as connection:
        return _verify_on(connection, key_of(engine), expect, page)


def _verify_on(
    connection: Connection,
    key: bytes | None,
    expect: tuple[int, str] | None,
    page: int = 1000,
) -> Verification:
    row = connection.execute(select(audit_chain).where(audit_chain.c.id == 1)).first()
    if row is None:
        return Verification(0, 0, "", Problem(0, None, "the chain head is missing"))
    head = _head_of(row)
    keyed = head.keyed_from is not None
    expected, prev, count = head.anchor_seq, head.anchor_hash, 0
    last: AuditEntry | None = None
    purge: AuditEntry | None = None
    expected_found = False

    def result(problem: Problem | None) -> Verification:
        return Verification(count, expected - 1, prev, problem, keyed)

    problem = _head_problem(head, key)
    if problem is not None:
        return result(problem)
    for entry in _rows(connection, page):
        defect = _defect(entry, expected, prev, key, head.keyed_from)
        if defect is None and expect is not None and entry.seq == expect[0]:
            expected_found = True
            if entry.hash != expect[1]:
                defect = f"its hash is not the expected {expect[1][:16]}..."
        if defect is not None:
            return result(Problem(entry.seq, entry.at, defect))
        if entry.action == PURGE_ACTION and entry.actor == SYSTEM:
            purge = entry
        expected, prev, count, last = entry.seq + 1, entry.hash, count + 1, entry
    if expected - 1 < head.last_seq:
        return result(Problem(expected, None, f"missing (the chain's newest is {head.last_seq})"))
    if last is not None and (last.seq > head.last_seq or last.hash != head.last_hash):
        reason = f"the chain's newest entry is {head.last_seq}: this one was added or changed"
        return result(Problem(last.seq, last.at, reason))
    if last is None and prev != head.last_hash:
        return result(Problem(expected, None, "the chain head was changed"))
    problem = _anchor_problem(head, purge)
    if problem is None and expect is not None and not expected_found:
        seq = expect[0]
        if seq < head.anchor_seq:
            reason = f"it was purged (the oldest kept entry is {head.anchor_seq})"
        else:
            reason = f"missing (the chain's newest is {head.last_seq})"
        problem = Problem(seq, None, reason)
    return result(problem)
