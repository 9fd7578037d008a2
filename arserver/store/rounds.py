"""Participation rounds: the SQL behind :class:`~arserver.services.rounds.RoundService`
(creating, changing and reading rounds) and what a round needs to know of its comments and of
the resident tokens narrowed to it (``round-link:ID``, ``round:ID``).

Times are timezone-aware UTC; ``area`` is the GeoJSON Polygon or MultiPolygon (WGS 84) as it
was checked, ``west``..``north`` its bounding box in degrees.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict, cast

from sqlalchemy import Connection, func, insert, select, update

from arserver.store.schema import assets, comments, rounds, tokens


class RoundRow(TypedDict):
    """A round: ``mode`` staff | public; comments are admitted from ``starts_at`` (inclusive)
    to ``ends_at`` (exclusive); ``asset_ids`` the assets it is about; ``pseudonym_salt`` the
    secret that makes its residents' pseudonyms (never leaves the server)."""

    id: str
    title: str
    description: str
    privacy_notice: str
    mode: str
    area: dict[str, Any]
    west: float
    south: float
    east: float
    north: float
    asset_ids: list[str]
    starts_at: datetime
    ends_at: datetime
    pseudonym_salt: str
    created_by: str | None
    created_at: datetime
    updated_at: datetime


def insert_round(connection: Connection, row: RoundRow) -> None:
    connection.execute(insert(rounds).values(**row))


def round_of(
    connection: Connection, round_id: str, *, lock: Literal["share", "update"] | None = None
) -> RoundRow | None:
    """A round by its id, None if there is none. ``lock``: hold its row until the caller's
    transaction ends, taken before the row is read: ``share`` for writing a comment in it or
    letting a resident join (they do not wait for each other), ``update`` for changing it
    (waits for the comments and joins being written, and they for the change). PostgreSQL
    locks the row (``SELECT ... FOR SHARE`` / ``FOR UPDATE``); SQLite has one write lock for
    the whole database, so a no-op write takes it first and every read after it sees the
    latest commit (pysqlite starts no transaction for reads alone)."""
    query = select(rounds).where(rounds.c.id == round_id)
    if lock is not None:
        query = query.with_for_update(read=lock == "share")
        if connection.dialect.name == "sqlite":
            connection.execute(
                update(rounds).where(rounds.c.id == round_id).values(mode=rounds.c.mode)
            )
    row = connection.execute(query).first()
    return None if row is None else cast(RoundRow, dict(row._mapping))


def update_round(connection: Connection, round_id: str, values: Mapping[str, Any]) -> None:
    """Set columns of a round (``values``: column -> value; ``updated_at`` included)."""
    connection.execute(update(rounds).where(rounds.c.id == round_id).values(**values))


def list_rounds(
    connection: Connection, *, public_only: bool, only: str | None, limit: int
) -> list[RoundRow]:
    """Rounds, the latest start first; ``public_only``: public ones; ``only``: that round
    alone (a round-scoped caller's)."""
    query = select(rounds).order_by(rounds.c.starts_at.desc(), rounds.c.id).limit(limit)
    if public_only:
        query = query.where(rounds.c.mode == "public")
    if only is not None:
        query = query.where(rounds.c.id == only)
    return [cast(RoundRow, dict(r._mapping)) for r in connection.execute(query)]


def visible_comment_counts(connection: Connection, round_ids: Collection[str]) -> dict[str, int]:
    """{round id: how many of its comments are visible} (rounds without any left out)."""
    if not round_ids:
        return {}
    query = (
        select(comments.c.round_id, func.count())
        .where(comments.c.round_id.in_(sorted(round_ids)), comments.c.status == "visible")
        .group_by(comments.c.round_id)
    )
    return {round_id: int(n) for round_id, n in connection.execute(query)}


def comment_span(connection: Connection, round_id: str) -> tuple[datetime | None, datetime | None]:
    """When the first and the last comment of a round that is not erased (visible or hidden)
    were written; (None, None) when it has none. Erased comments are left out: what is left
    of them (a place rounded to 3 decimals) binds the round no more."""
    row = connection.execute(
        select(func.min(comments.c.created_at), func.max(comments.c.created_at)).where(
            comments.c.round_id == round_id, comments.c.status != "erased"
        )
    ).one()
    first, last = row
    return (_utc(first), _utc(last))


def _utc(value: Any) -> datetime | None:
    """Aggregates bypass the column type: read them back as aware UTC datetimes."""
    if value is None:
        return None
    if isinstance(value, str):  # SQLite returns an aggregate of a datetime as text
        value = datetime.fromisoformat(value)
    moment = cast(datetime, value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def comment_places(connection: Connection, round_id: str) -> Iterator[tuple[float, float]]:
    """(lon, lat) of every comment of a round that is not erased (visible or hidden: an
    erased comment's place is rounded and may lie outside the area), streamed (the option is
    the statement's: the connection's next statements, an UPDATE among them, run as usual)."""
    query = (
        select(comments.c.lon, comments.c.lat)
        .where(comments.c.round_id == round_id, comments.c.status != "erased")
        .execution_options(yield_per=1000)
    )
    with connection.execute(query) as result:
        for lon, lat in result:
            yield (float(lon), float(lat))


def participant_count(connection: Connection, round_id: str) -> int:
    """How many residents joined a round: its personal tokens (``round:ID``), ever issued."""
    count = connection.execute(
        select(func.count()).select_from(tokens).where(tokens.c.scope == f"round:{round_id}")
    ).scalar_one()
    return int(count)


def link_token_ids(connection: Connection, round_id: str) -> list[str]:
    """The ids of a round's link tokens (``round-link:ID``) that are not revoked."""
    query = select(tokens.c.id).where(
        tokens.c.scope == f"round-link:{round_id}", tokens.c.revoked_at.is_(None)
    )
    return list(connection.execute(query).scalars())


def revoke_link_tokens(connection: Connection, round_id: str, at: datetime) -> list[str]:
    """Revoke a round's link tokens (``round-link:ID``) not yet revoked, in the caller's
    transaction, as of ``at``; returns their ids (for announcing once it commits)."""
    revoked = link_token_ids(connection, round_id)
    if revoked:
        connection.execute(
            update(tokens)
            .where(tokens.c.id.in_(revoked), tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
    return revoked


def set_token_expiry(connection: Connection, round_id: str, expires_at: datetime | None) -> None:
    """Move the expiry of every resident token of a round (its links and its residents'
    tokens) to ``expires_at`` (None: until revoked), when the round's end moves: one UPDATE
    (by the ``tokens_scope`` index). New tokens are created with their expiry instead."""
    connection.execute(
        update(tokens)
        .where(tokens.c.scope.in_([f"round:{round_id}", f"round-link:{round_id}"]))
        .values(expires_at=expires_at)
    )


def asset_publicity(connection: Connection, asset_ids: Collection[str]) -> dict[str, bool]:
    """{asset id: whether it is public} for those of ``asset_ids`` that exist."""
    if not asset_ids:
        return {}
    query = select(assets.c.id, assets.c.public).where(assets.c.id.in_(sorted(asset_ids)))
    return {asset_id: bool(public) for asset_id, public in connection.execute(query)}
