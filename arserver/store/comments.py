"""Comments: the SQL behind :class:`~arserver.services.comments.CommentService` (writing,
moderating, answering, each moderation step kept in ``comment_events``) and the comments'
listing.

Positions are WGS 84 longitude, latitude (degrees) and ellipsoidal height (metres, None when
unknown); times timezone-aware UTC. ``author`` is the link to a person: it is read here (for
export and for pseudonyms) but no answer of the API ever carries it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, cast

from sqlalchemy import ColumnElement, Connection, and_, func, insert, or_, select, update

from arserver.store.schema import comment_events, comments

#: Statuses: shown to everyone who may read the comment; hidden by a moderator (text and
#: reason kept); erased (a person's data removed on request).
STATUSES = ("visible", "hidden", "erased")
#: The steps of a comment's moderation history: hidden (``text`` the reason), shown again
#: (no text), answered (``text`` the answer).
EVENT_ACTIONS = ("hidden", "restored", "answered")


class CommentRow(TypedDict):
    """A comment as stored (see the table's description in the schema)."""

    id: str
    round_id: str | None
    thread_id: str
    reply_to: str | None
    lon: float
    lat: float
    h: float | None
    asset_id: str | None
    feature_id: str | None
    text: str
    author: str | None
    author_name: str
    author_kind: str
    status: str
    moderation_reason: str | None
    moderated_by: str | None
    moderated_at: datetime | None
    response: str | None
    responded_by: str | None
    responded_at: datetime | None
    created_at: datetime


class CommentEventRow(TypedDict):
    """One step of a comment's moderation: when (UTC), who (``actor``, a
    :func:`~arserver.security.actors.person_of` value; staff only ever read it), which of
    :data:`EVENT_ACTIONS`, and its reason or answer."""

    at: datetime
    actor: str | None
    action: str
    text: str | None


@dataclass(frozen=True)
class CommentQuery:
    """What a listing asks for. ``round_id``: comments of that round only; ``bbox``: west,
    south, east, north in degrees; ``statuses``: which statuses to include; ``before``: the
    (created_at, id) of the last comment of the previous page (keyset pagination, newest
    first)."""

    statuses: Collection[str]
    limit: int
    round_id: str | None = None
    asset_id: str | None = None
    thread_id: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    before: tuple[datetime, str] | None = None


def insert_comment(connection: Connection, row: CommentRow) -> None:
    connection.execute(insert(comments).values(**row))


def comment_of(connection: Connection, comment_id: str, *, lock: bool = False) -> CommentRow | None:
    """A comment by its id, None if there is none. ``lock``: no other transaction changes it
    until this one ends (a reply holds the comment it answers: ``SELECT ... FOR SHARE`` on
    PostgreSQL; on SQLite a no-op write first, which takes the database's one write lock
    before the row is read)."""
    query = select(comments).where(comments.c.id == comment_id)
    if lock:
        query = query.with_for_update(read=True)
        if connection.dialect.name == "sqlite":
            connection.execute(
                update(comments).where(comments.c.id == comment_id).values(status=comments.c.status)
            )
    row = connection.execute(query).first()
    return None if row is None else cast(CommentRow, dict(row._mapping))


def comment_count(connection: Connection, round_id: str, *, author: str | None = None) -> int:
    """How many comments a round has (of any status), or of those by ``author`` (a
    :func:`~arserver.security.actors.person_of` value)."""
    query = select(func.count()).select_from(comments).where(comments.c.round_id == round_id)
    if author is not None:
        query = query.where(comments.c.author == author)
    return int(connection.execute(query).scalar_one())


def insert_event(
    connection: Connection,
    comment_id: str,
    *,
    at: datetime,
    actor: str | None,
    action: str,
    text: str | None = None,
) -> None:
    """Record one step of a comment's moderation (``action`` one of :data:`EVENT_ACTIONS`), in
    the caller's transaction: the same one that changes the comment."""
    if action not in EVENT_ACTIONS:
        raise ValueError(f"unknown moderation action {action!r}")
    connection.execute(
        insert(comment_events).values(
            comment_id=comment_id, at=at, actor=actor, action=action, text=text
        )
    )


def event_count(connection: Connection, comment_id: str) -> int:
    """How many steps a comment's moderation history holds."""
    query = (
        select(func.count())
        .select_from(comment_events)
        .where(comment_events.c.comment_id == comment_id)
    )
    return int(connection.execute(query).scalar_one())


def history(connection: Connection, comment_id: str) -> list[CommentEventRow]:
    """A comment's moderation history, oldest first (ties in the order written)."""
    query = (
        select(comment_events.c.at, comment_events.c.actor, comment_events.c.action,
               comment_events.c.text)
        .where(comment_events.c.comment_id == comment_id)
        .order_by(comment_events.c.at, comment_events.c.id)
    )  # fmt: skip
    return [cast(CommentEventRow, dict(r._mapping)) for r in connection.execute(query)]


def change_status(
    connection: Connection,
    comment_id: str,
    *,
    from_status: str,
    to_status: str,
    by: str,
    at: datetime,
    reason: str | None = None,
) -> bool:
    """Move a comment from ``from_status`` to ``to_status`` as moderator ``by``; a ``reason``
    (hiding) replaces the stored one, None keeps it (restoring keeps why it was hidden).
    Whether the comment had ``from_status`` (otherwise nothing changed)."""
    values: dict[str, Any] = {"status": to_status, "moderated_by": by, "moderated_at": at}
    if reason is not None:
        values["moderation_reason"] = reason
    changed = connection.execute(
        update(comments)
        .where(comments.c.id == comment_id, comments.c.status == from_status)
        .values(**values)
    ).rowcount
    return bool(changed)


def set_response(connection: Connection, comment_id: str, text: str, by: str, at: datetime) -> bool:
    """Store (or replace) the planners' answer to a visible comment; whether it was visible."""
    changed = connection.execute(
        update(comments)
        .where(comments.c.id == comment_id, comments.c.status == "visible")
        .values(response=text, responded_by=by, responded_at=at)
    ).rowcount
    return bool(changed)


def list_comments(connection: Connection, query: CommentQuery) -> list[CommentRow]:
    """Comments that match ``query``, newest first (ties by id, descending)."""
    where: list[ColumnElement[bool]] = [comments.c.status.in_(sorted(query.statuses))]
    if query.round_id is not None:
        where.append(comments.c.round_id == query.round_id)
    if query.asset_id is not None:
        where.append(comments.c.asset_id == query.asset_id)
    if query.thread_id is not None:
        where.append(comments.c.thread_id == query.thread_id)
    if query.bbox is not None:
        west, south, east, north = query.bbox
        where += [comments.c.lon.between(west, east), comments.c.lat.between(south, north)]
    if query.before is not None:
        moment, last_id = query.before
        where.append(
            or_(
                comments.c.created_at < moment,
                and_(comments.c.created_at == moment, comments.c.id < last_id),
            )
        )
    statement = (
        select(comments)
        .where(*where)
        .order_by(comments.c.created_at.desc(), comments.c.id.desc())
        .limit(query.limit)
    )
    return [cast(CommentRow, dict(r._mapping)) for r in connection.execute(statement)]
