"""The reads behind a participation round's report (:mod:`arserver.services.round_report`):
the round, the names of assets, and the round's comments streamed in time order.

Everything is read in one snapshot (:func:`arserver.store.snapshot.snapshot`), so a comment
moderated or answered while the report is made is in it either before or after the change,
never half. Comments come from
one query fetched ``page`` rows at a time (a server-side cursor on PostgreSQL), so a round with
tens of thousands of comments never sits in the database driver's memory at once.

The person behind a comment never leaves this module: ``comments.author`` (the link to a
person), ``moderated_by`` and ``responded_by`` (staff identities), ``comment_events.actor`` and
``rounds.created_by`` and ``rounds.pseudonym_salt`` are not selected at all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any, TypedDict, cast

from sqlalchemy import Connection, select

from arserver.store.schema import assets, comment_events, comments, rounds

#: Rows fetched from the database per round trip while comments are streamed.
COMMENT_PAGE = 1000
#: Asset ids per ``IN (...)`` list when names are looked up.
NAME_CHUNK = 500


class RoundRow(TypedDict):
    """A round as the report shows it; ``area`` is GeoJSON (WGS 84), ``west``..``north`` its
    bounds in degrees, ``asset_ids`` the planned assets in the round's order."""

    id: str
    title: str
    description: str
    privacy_notice: str
    mode: str
    area: Any
    west: float
    south: float
    east: float
    north: float
    asset_ids: Any
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    updated_at: datetime


class CommentRow(TypedDict):
    """A comment as the report shows it: WGS 84 degrees and ellipsoidal metres (``h`` may be
    None), times timezone-aware UTC. Nothing here identifies a person."""

    id: str
    thread_id: str
    reply_to: str | None
    lon: float
    lat: float
    h: float | None
    asset_id: str | None
    feature_id: str | None
    text: str
    author_name: str
    author_kind: str
    status: str
    moderation_reason: str | None
    moderated_at: datetime | None
    response: str | None
    responded_at: datetime | None
    created_at: datetime


class EventRow(TypedDict):
    """One step of a comment's moderation as the report shows it (without who took it):
    ``action`` hidden | restored | answered, ``text`` the reason or the answer."""

    comment_id: str
    at: datetime
    action: str
    text: str | None


_ROUND_FIELDS = (
    rounds.c.id, rounds.c.title, rounds.c.description, rounds.c.privacy_notice, rounds.c.mode,
    rounds.c.area, rounds.c.west, rounds.c.south, rounds.c.east, rounds.c.north,
    rounds.c.asset_ids, rounds.c.starts_at, rounds.c.ends_at, rounds.c.created_at,
    rounds.c.updated_at,
)  # fmt: skip

_COMMENT_FIELDS = (
    comments.c.id, comments.c.thread_id, comments.c.reply_to, comments.c.lon, comments.c.lat,
    comments.c.h, comments.c.asset_id, comments.c.feature_id, comments.c.text,
    comments.c.author_name, comments.c.author_kind, comments.c.status,
    comments.c.moderation_reason, comments.c.moderated_at, comments.c.response,
    comments.c.responded_at, comments.c.created_at,
)  # fmt: skip


def round_row(connection: Connection, round_id: str) -> RoundRow | None:
    """The round ``round_id``, or None if there is none."""
    row = connection.execute(select(*_ROUND_FIELDS).where(rounds.c.id == round_id)).first()
    return None if row is None else cast(RoundRow, dict(row._mapping))


def asset_names(connection: Connection, asset_ids: Collection[str]) -> dict[str, str]:
    """The names of those of ``asset_ids`` that exist (deleted assets are missing)."""
    wanted = sorted(set(asset_ids))
    names: dict[str, str] = {}
    for start in range(0, len(wanted), NAME_CHUNK):
        chunk = wanted[start : start + NAME_CHUNK]
        query = select(assets.c.id, assets.c.name).where(assets.c.id.in_(chunk))
        names.update((row.id, row.name) for row in connection.execute(query))
    return names


def round_comments(
    connection: Connection, round_id: str, page: int = COMMENT_PAGE
) -> Iterator[CommentRow]:
    """Every comment of the round, every status, oldest first (ties by id), fetched ``page``
    rows at a time. Consume it while ``connection`` is open."""
    query = (
        select(*_COMMENT_FIELDS)
        .where(comments.c.round_id == round_id)
        .order_by(comments.c.created_at, comments.c.id)
        .execution_options(yield_per=page)
    )
    with connection.execute(query) as result:
        for row in result:
            yield cast(CommentRow, dict(row._mapping))


def round_events(
    connection: Connection, round_id: str, page: int = COMMENT_PAGE
) -> Iterator[EventRow]:
    """The moderation steps of every comment of the round, per comment oldest first (ties in
    the order written), fetched ``page`` rows at a time. Consume it while ``connection`` is
    open."""
    query = (
        select(
            comment_events.c.comment_id, comment_events.c.at, comment_events.c.action,
            comment_events.c.text,
        )
        .join(comments, comments.c.id == comment_events.c.comment_id)
        .where(comments.c.round_id == round_id)
        .order_by(comment_events.c.comment_id, comment_events.c.at, comment_events.c.id)
        .execution_options(yield_per=page)
    )  # fmt: skip
    with connection.execute(query) as result:
        for row in result:
            yield cast(EventRow, dict(row._mapping))
