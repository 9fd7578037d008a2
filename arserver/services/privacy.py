"""Export and erasure of one person's data (AVG articles 15 and 17), for admins.

A person (a *subject*) is named in one of three ways:

* ``token:ID``: one of our tokens, by its id (``arserver token list``);
* ``name:TEXT``: every token whose name is exactly ``TEXT`` (a person's tokens are usually
  named after them or their device);
* ``oidc:<issuer tag>:<subject>``: a caller signed in through OpenID Connect, by the stable
  id the audit log records for them (:func:`~arserver.security.oidc.subject_of`; a per-JWT id
  with ``:<exp>`` at the end is accepted and stands for the same person).

What arserver holds about a subject is one :class:`DataKind` per kind of data in
:data:`KINDS` (its export and its erasure, on one transaction); a new kind of personal data
is one more entry there. Today:

* ``tokens``: id, name, role, scope and times. Erasure revokes them (through
  :class:`~arserver.services.tokens.TokenService`, so their live connections close) and
  blanks their names;
* ``audit_entries``: the entries the subject made. Erasure clears their actor; the salted
  digest stays, so ``arserver audit verify`` still passes and the entries can no longer be
  linked to the person (in a keyed log the erasure leaves its mark, see
  :mod:`arserver.store.audit`);
* ``alert_acknowledgements``: alerts record the *name* of the token that acknowledged them
  (an OpenID Connect caller's stable subject id instead), so they are found by the subject's
  token names (another token with the same name is included) or subject id. Erasure clears
  it; the acknowledgement and its time stay.
* ``inspections``, ``inspection_assignments``, ``inspection_history``,
  ``inspection_history_assignments``, ``inspection_photos``: the inspections the subject
  recorded, those assigned to them, the history entries they made or that assigned them,
  the photos they added (found the same way; resident tokens as ``token:<id>``). Each kind
  exports only the subject's part (an assignee's export has no other inspector's
  description). Erasure clears the person (and the notes they wrote); the findings, about
  public space, stay;
* ``comments``, ``comment_moderation``, ``comment_responses``,
  ``comment_moderation_history``: the comments they wrote, and their acts as moderator or
  responder (their reasons and answers, not the comments of others). Erasure of an author
  blanks the text and the author, rounds the place to about 100 m and marks the comment
  ``erased`` (it keeps its place in its thread and its round's report); a moderator or
  responder is cleared from the comment and its history.
* ``alignments``: the alignments of their headsets (``POST /api/v1/align``: an origin near
  where they stood and a transformation), found by their token ids or subject id. Erasure
  deletes them.

Erasure reaches the live overlay: the erased comments leave it and the inspections that named
the subject are announced again without them (after the commit, on the bus). Replies that took
their place from an erased comment (they gave none of their own) get its rounded place too.

An export holds at most :data:`MAX_RECORDS` records of each kind (the newest), so that its
size is bounded whatever a subject did; ``totals`` says how many there are, and ``more`` where
the rest can be read (the audit log's pages of one actor). The export and the erasure are
recorded in the audit log by whoever calls it (the HTTP middleware, the command) with the
subject's digest (:meth:`~arserver.services.audit.AuditService.subject_digest`), never the
subject.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine

from arserver.domain import TOKEN_ACTOR_PREFIX, Change, comment_change
from arserver.errors import InputError
from arserver.live.bus import Bus
from arserver.security.oidc import stable_subject
from arserver.services.inspections import live_change as inspection_live_change
from arserver.services.tokens import TokenService
from arserver.store import alignments as alignment_rows
from arserver.store import audit as audit_rows
from arserver.store import comments as comment_rows
from arserver.store import inspections as inspection_rows
from arserver.store import privacy as rows

#: Most records of one kind an export holds (the newest).
MAX_RECORDS = 1000
#: Where the audit entries of one actor are read page by page.
AUDIT_PAGES = "/api/v1/audit?actor={actor}"

_TOKEN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f\ud800-\udfff]+$")


@dataclass(frozen=True)
class Subject:
    """A person as named by an admin: ``kind`` ``token``, ``name`` or ``oidc`` and its
    ``value``."""

    kind: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Subject:
        """``token:ID``, ``name:TEXT`` or ``oidc:...``; :class:`InputError` otherwise."""
        kind, colon, value = text.partition(":")
        if colon and kind == "token" and _TOKEN_ID.match(value):
            return cls(kind, value)
        if colon and kind == "name" and 0 < len(value) <= 200 and _PRINTABLE.match(value):
            return cls(kind, value)
        if colon and kind == "oidc" and 0 < len(text) <= 200 and _PRINTABLE.match(value):
            return cls(kind, stable_subject(text))  # the whole text is the audit log's actor
        raise InputError("a subject is 'token:ID', 'name:TEXT' or 'oidc:SUBJECT'")

    def __str__(self) -> str:
        return self.value if self.kind == "oidc" else f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class Identity:
    """Where a subject's data is found: its token ids, the names records of people's acts
    store for it (``recorded_as``: token names, ``token:<id>`` of resident tokens, or an
    OpenID Connect subject id; :func:`~arserver.security.actors.person_of`), its audit actors, and
    the prefixes of per-JWT actor ids recorded for an OpenID Connect subject before actors
    were stable."""

    token_ids: list[str] = field(default_factory=list)
    recorded_as: list[str] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)
    actor_prefixes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DataKind:
    """One kind of personal data: ``export`` returns at most ``limit`` of its records, the
    newest (JSON-ready but for timezone-aware datetimes), ``count`` how many there are,
    ``erase`` erases them and returns how many records changed; all run on the caller's
    transaction."""

    name: str
    export: Callable[[Connection, Identity, int], list[dict[str, Any]]]
    count: Callable[[Connection, Identity], int]
    erase: Callable[[Connection, Identity], int]


def _export_tokens(connection: Connection, who: Identity, limit: int) -> list[dict[str, Any]]:
    return rows.token_rows(connection, who.token_ids, limit)


def _count_tokens(connection: Connection, who: Identity) -> int:
    return rows.token_count(connection, who.token_ids)


def _erase_tokens(connection: Connection, who: Identity) -> int:
    return rows.blank_token_names(connection, who.token_ids)


def _export_audit(connection: Connection, who: Identity, limit: int) -> list[dict[str, Any]]:
    return [
        {
            "seq": entry.seq,
            "at": entry.at,
            "actor": entry.actor,
            "action": entry.action,
            "object": entry.object,
            "result": entry.result,
            "origin": entry.origin,
        }
        for entry in audit_rows.entries_of(connection, who.actors, limit, who.actor_prefixes)
    ]


def _count_audit(connection: Connection, who: Identity) -> int:
    return audit_rows.count_of(connection, who.actors, who.actor_prefixes)


def _erase_audit(connection: Connection, who: Identity) -> int:
    return audit_rows.erase_actors(connection, who.actors, who.actor_prefixes)


def _export_acknowledgements(
    connection: Connection, who: Identity, limit: int
) -> list[dict[str, Any]]:
    return rows.acknowledgements_by(connection, who.recorded_as, limit)


def _count_acknowledgements(connection: Connection, who: Identity) -> int:
    return rows.acknowledgement_count(connection, who.recorded_as)


def _erase_acknowledgements(connection: Connection, who: Identity) -> int:
    return rows.erase_acknowledgements(connection, who.recorded_as)


def _export_alignments(connection: Connection, who: Identity, limit: int) -> list[dict[str, Any]]:
    return [dict(row) for row in alignment_rows.alignments_of(connection, who.actors, limit)]


def _count_alignments(connection: Connection, who: Identity) -> int:
    return alignment_rows.alignment_count(connection, who.actors)


def _erase_alignments(connection: Connection, who: Identity) -> int:
    return alignment_rows.delete_alignments_of(connection, who.actors)


def _held_in(name: str, columns: rows.PersonColumns) -> DataKind:
    """The kind of data of the rows of a table that name the person (``recorded_as``)."""
    return DataKind(
        name,
        lambda connection, who, limit: columns.rows(connection, who.recorded_as, limit),
        lambda connection, who: columns.count(connection, who.recorded_as),
        lambda connection, who: columns.blank(connection, who.recorded_as),
    )


#: Every kind of personal data arserver holds about a person, in the order it is erased.
KINDS: tuple[DataKind, ...] = (
    DataKind("tokens", _export_tokens, _count_tokens, _erase_tokens),
    DataKind("audit_entries", _export_audit, _count_audit, _erase_audit),
    DataKind(
        "alert_acknowledgements", _export_acknowledgements, _count_acknowledgements,
        _erase_acknowledgements,
    ),
    _held_in("inspections", rows.INSPECTIONS),
    _held_in("inspection_assignments", rows.INSPECTION_ASSIGNMENTS),
    _held_in("inspection_history", rows.INSPECTION_EVENTS),
    _held_in("inspection_history_assignments", rows.INSPECTION_EVENT_ASSIGNMENTS),
    _held_in("inspection_photos", rows.INSPECTION_PHOTOS),
    _held_in("comments", rows.COMMENTS),
    _held_in("comment_moderation", rows.COMMENT_MODERATION),
    _held_in("comment_responses", rows.COMMENT_RESPONSES),
    _held_in("comment_moderation_history", rows.COMMENT_EVENTS),
    DataKind("alignments", _export_alignments, _count_alignments, _erase_alignments),
)  # fmt: skip


def _identify(connection: Connection, subject: Subject) -> Identity:
    if subject.kind == "oidc":
        stable = subject.value
        return Identity(recorded_as=[stable], actors=[stable], actor_prefixes=[stable + ":"])
    if subject.kind == "token":
        ids = [subject.value]
    else:
        ids = rows.token_ids_named(connection, subject.value)
    names = rows.token_names(connection, ids)
    if subject.kind == "name" and subject.value not in names:
        names.append(subject.value)
    names += [TOKEN_ACTOR_PREFIX + token_id for token_id in ids]  # residents' records
    return Identity(token_ids=ids, recorded_as=names, actors=list(ids))


def _removals(comments: list[comment_rows.CommentRow]) -> list[Change]:
    """The live events that take erased comments off the overlay, at the places they had
    before the erasure (where their subscribers are)."""
    return [
        comment_change(
            comment["id"], comment["thread_id"], "", "",
            (comment["lon"], comment["lat"], comment["h"]), datetime.now(UTC),
            round_id=comment["round_id"], visible=False,
        )
        for comment in comments
    ]  # fmt: skip


def _current(
    connection: Connection, inspection_ids: list[str], comment_ids: list[str]
) -> list[Change]:
    """The live events of records that stay on the overlay, as they are after the erasure:
    inspections without the subject, replies at their parent's rounded place."""
    changes = []
    for inspection_id in inspection_ids:
        row = inspection_rows.inspection(connection, inspection_id)
        if row is not None:
            changes.append(inspection_live_change(row))
    for comment_id in comment_ids:
        comment = comment_rows.comment_of(connection, comment_id)
        if comment is not None and comment["status"] == "visible":
            moments = [comment["created_at"], comment["moderated_at"], comment["responded_at"]]
            changes.append(
                comment_change(
                    comment["id"], comment["thread_id"], comment["text"], comment["author_name"],
                    (comment["lon"], comment["lat"], comment["h"]),
                    max(m for m in moments if m is not None), round_id=comment["round_id"],
                    reply_to=comment["reply_to"], asset_id=comment["asset_id"],
                    feature_id=comment["feature_id"], response=comment["response"],
                )
            )  # fmt: skip
    return changes


def _more(who: Identity, kind: str) -> list[str]:
    """Where the records of ``kind`` beyond an export's are read."""
    if kind != "audit_entries":
        return []
    return [AUDIT_PAGES.format(actor=quote(actor, safe=":")) for actor in who.actors]


class PrivacyService:
    """Export and erasure over one database; ``tokens`` revokes the erased tokens, ``bus``
    (None: nowhere) carries the live overlay's changes of an erasure."""

    def __init__(self, engine: Engine, tokens: TokenService, bus: Bus | None = None) -> None:
        self.engine = engine
        self.tokens = tokens
        self.bus = bus

    def export(self, subject: Subject) -> dict[str, Any]:
        """``{"subject", "exported_at", "data": {kind: [record, ...]}, "totals": {kind: n},
        "more": {kind: [path, ...]}}`` with every kind of :data:`KINDS` (an empty list where
        nothing is held), read in one transaction. ``data`` holds at most
        :data:`MAX_RECORDS` records of a kind, the newest, oldest of them first; ``totals``
        how many are held; ``more`` only for a kind with more than that, the API paths that
        page through all of them."""
        with self.engine.begin() as connection:
            who = _identify(connection, subject)
            data = {kind.name: kind.export(connection, who, MAX_RECORDS) for kind in KINDS}
            totals = {kind.name: kind.count(connection, who) for kind in KINDS}
        more = {name: _more(who, name) for name, total in totals.items() if total > len(data[name])}
        return {
            "subject": str(subject), "exported_at": datetime.now(UTC), "data": data,
            "totals": totals, "more": more,
        }  # fmt: skip

    def erase(self, subject: Subject) -> dict[str, Any]:
        """Revoke the subject's tokens, then erase every kind of :data:`KINDS` in one
        transaction; ``{"subject", "erased_at", "revoked_tokens": n, "erased": {kind: n}}``.
        Running it again erases nothing more and is harmless."""
        with self.engine.connect() as connection:
            who = _identify(connection, subject)
        revoked = sum(1 for token_id in who.token_ids if self.tokens.revoke(token_id))
        with self.engine.begin() as connection:
            live_inspections, live_comments = rows.live_records_of(connection, who.recorded_as)
            shown = [comment_rows.comment_of(connection, c) for c in live_comments]
            places = rows.places_of_comments(connection, who.recorded_as)
            erased = {kind.name: kind.erase(connection, who) for kind in KINDS}
            moved = rows.coarsen_inherited_places(connection, places)
            changes = _removals([c for c in shown if c is not None])
            changes += _current(connection, live_inspections, moved)
        if changes and self.bus is not None:
            self.bus.publish(changes)  # after the commit; a bus never fails the erasure
        return {
            "subject": str(subject), "erased_at": datetime.now(UTC), "revoked_tokens": revoked,
            "erased": erased,
        }  # fmt: skip
