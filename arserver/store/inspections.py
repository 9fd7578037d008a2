"""Inspections: the SQL behind :class:`~arserver.services.inspections.InspectionService`
(findings, their history and their photos) and the inspections' listing.

Positions are WGS 84 longitude and latitude in degrees and ellipsoidal heights in metres;
times are timezone-aware UTC. The functions that write take the caller's connection, so that a
finding and its history row, or a photo and its history row, commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)

from arserver.store.schema import alerts, inspection_events, inspection_photos, inspections, sensors


class InspectionRow(TypedDict):
    """An inspection: ``status`` open | in_progress | resolved | rejected; ``sensor_ids`` and
    ``alert_ids`` the linked sensors and alerts; ``closed_at`` when it was last resolved or
    rejected (None while open or in progress)."""

    id: str
    category: str
    severity: str
    description: str
    status: str
    lon: float
    lat: float
    h: float | None
    asset_id: str | None
    feature_id: str | None
    sensor_ids: list[str]
    alert_ids: list[str]
    assignee: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class EventRow(TypedDict):
    """One history entry: ``change`` created | status | assigned | edited | note | photo;
    ``actor`` who (None once erased), ``at`` when, the status before and after (for a status
    change; after only for ``created``), the assignee after (for ``created`` and ``assigned``)
    and the actor's ``note``."""

    id: int
    inspection_id: str
    at: datetime
    actor: str | None
    change: str
    from_status: str | None
    to_status: str | None
    assignee: str | None
    note: str | None


class PhotoRow(TypedDict):
    """A photo's description without its bytes."""

    id: str
    inspection_id: str
    content_type: str
    width: int
    height: int
    created_by: str | None
    created_at: datetime


@dataclass(frozen=True)
class Filters:
    """Which inspections a listing or an export takes: within ``bbox`` (west, south, east,
    north in degrees, west <= east), of one of ``statuses`` / ``categories`` (empty: any), on
    ``asset_id``, created in [``created_from``, ``created_to``) (None: unbounded)."""

    bbox: tuple[float, float, float, float] | None = None
    statuses: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    asset_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


#: Where a page of a listing ends: the (created_at, id) of its last inspection.
Cursor = tuple[datetime, str]

_PHOTO_COLUMNS = (
    inspection_photos.c.id,
    inspection_photos.c.inspection_id,
    inspection_photos.c.content_type,
    inspection_photos.c.width,
    inspection_photos.c.height,
    inspection_photos.c.created_by,
    inspection_photos.c.created_at,
)


def _inspection(row: Any) -> InspectionRow:
    values = dict(row._mapping)
    values["sensor_ids"] = list(values["sensor_ids"] or [])
    values["alert_ids"] = list(values["alert_ids"] or [])
    return cast(InspectionRow, values)


# -- findings ---------------------------------------------------------------------------------


def insert_inspection(connection: Connection, values: dict[str, Any]) -> None:
    """Insert an inspection (every column of ``inspections``)."""
    connection.execute(insert(inspections).values(**values))


def inspection(
    connection: Connection, inspection_id: str, *, lock: bool = False
) -> InspectionRow | None:
    """The inspection, None if there is none. ``lock``: no other transaction changes it until
    this one ends (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite a write first, which
    takes the database's one write lock before the row is read)."""
    query = select(inspections).where(inspections.c.id == inspection_id)
    if lock:
        query = query.with_for_update()
        if connection.dialect.name == "sqlite":
            connection.execute(
                update(inspections)
                .where(inspections.c.id == inspection_id)
                .values(status=inspections.c.status)
            )
    row = connection.execute(query).first()
    return None if row is None else _inspection(row)


def update_inspection(
    connection: Connection,
    inspection_id: str,
    *,
    status: str,
    updated_at: datetime,
    values: dict[str, Any],
) -> bool:
    """Set ``values`` on the inspection if it is still as it was read (its ``status`` and
    ``updated_at``); whether it was. A concurrent change in between makes it False, and the
    caller reads again, so that no transition is checked against a stale status."""
    changed = connection.execute(
        update(inspections)
        .where(
            inspections.c.id == inspection_id,
            inspections.c.status == status,
            inspections.c.updated_at == updated_at,
        )
        .values(**values)
    ).rowcount
    return bool(changed)


def touch(connection: Connection, inspection_id: str, at: datetime) -> None:
    """Mark the inspection changed at ``at`` (a photo added)."""
    connection.execute(
        update(inspections).where(inspections.c.id == inspection_id).values(updated_at=at)
    )


def existing_ids(connection: Connection, kind: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` exist as sensors (``kind`` "sensors") or alerts ("alerts")."""
    if not ids:
        return set()
    column = sensors.c.id if kind == "sensors" else alerts.c.id
    return set(connection.execute(select(column).where(column.in_(list(ids)))).scalars())


def _conditions(filters: Filters) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if filters.bbox is not None:
        west, south, east, north = filters.bbox
        where += [
            inspections.c.lon >= west,
            inspections.c.lon <= east,
            inspections.c.lat >= south,
            inspections.c.lat <= north,
        ]
    if filters.statuses:
        where.append(inspections.c.status.in_(filters.statuses))
    if filters.categories:
        where.append(inspections.c.category.in_(filters.categories))
    if filters.asset_id is not None:
        where.append(inspections.c.asset_id == filters.asset_id)
    if filters.created_from is not None:
        where.append(inspections.c.created_at >= filters.created_from)
    if filters.created_to is not None:
        where.append(inspections.c.created_at < filters.created_to)
    return where


def search(
    connection: Connection, filters: Filters, limit: int, after: Cursor | None = None
) -> list[InspectionRow]:
    """At most ``limit`` inspections that match ``filters``, newest first (by creation, then
    id), starting after ``after`` (the last one of the previous page).

    The order and the cursor are one row comparison on (created_at, id), so both engines
    walk the ``inspections_created`` index from the cursor on and stop after ``limit`` rows."""
    where = _conditions(filters)
    if after is not None:
        created, last_id = after
        where.append(
            tuple_(inspections.c.created_at, inspections.c.id)
            < tuple_(
                literal(created, inspections.c.created_at.type),
                literal(last_id, inspections.c.id.type),
            )
        )
    query = (
        select(inspections)
        .where(*where)
        .order_by(inspections.c.created_at.desc(), inspections.c.id.desc())
        .limit(limit)
    )
    return [_inspection(row) for row in connection.execute(query)]


def active(connection: Connection) -> list[InspectionRow]:
    """Every inspection that is open or in progress (what the live overlay shows)."""
    query = select(inspections).where(inspections.c.status.in_(("open", "in_progress")))
    return [_inspection(row) for row in connection.execute(query)]


# -- history ----------------------------------------------------------------------------------


def add_events(connection: Connection, events: Sequence[dict[str, Any]]) -> None:
    """Append history entries (each: inspection_id, at, actor, change and optionally
    from_status, to_status, assignee, note), in the order given."""
    for event in events:  # one by one: ids grow in the order of the entries
        connection.execute(insert(inspection_events).values(**event))


def history(
    connection: Connection,
    inspection_id: str,
    *,
    before: int | None = None,
    limit: int | None = None,
) -> list[EventRow]:
    """The inspection's history, oldest first: the newest ``limit`` entries (None: all) of
    those with an id below ``before`` (None: every entry)."""
    query = select(inspection_events).where(inspection_events.c.inspection_id == inspection_id)
    if before is not None:
        query = query.where(inspection_events.c.id < before)
    if limit is None:
        query = query.order_by(inspection_events.c.id)
        return [cast(EventRow, dict(row._mapping)) for row in connection.execute(query)]
    newest = connection.execute(query.order_by(inspection_events.c.id.desc()).limit(limit))
    return [cast(EventRow, dict(row._mapping)) for row in newest][::-1]


def history_count(connection: Connection, inspection_id: str, *, before: int | None = None) -> int:
    """How many history entries the inspection has (with an id below ``before``, if given)."""
    query = select(func.count()).where(inspection_events.c.inspection_id == inspection_id)
    if before is not None:
        query = query.where(inspection_events.c.id < before)
    return int(connection.execute(query).scalar_one())


# -- photos -----------------------------------------------------------------------------------


def insert_photo(connection: Connection, values: dict[str, Any]) -> None:
    """Insert a photo (every column of ``inspection_photos``)."""
    connection.execute(insert(inspection_photos).values(**values))


def photo_count(connection: Connection, inspection_id: str) -> int:
    query = select(func.count()).where(inspection_photos.c.inspection_id == inspection_id)
    return int(connection.execute(query).scalar_one())


def photos(connection: Connection, inspection_id: str) -> list[PhotoRow]:
    """The inspection's photos (without bytes), oldest first."""
    query = (
        select(*_PHOTO_COLUMNS)
        .where(inspection_photos.c.inspection_id == inspection_id)
        .order_by(inspection_photos.c.created_at, inspection_photos.c.id)
    )
    return [cast(PhotoRow, dict(row._mapping)) for row in connection.execute(query)]


def photo_bytes(
    connection: Connection, inspection_id: str, photo_id: str, *, thumbnail: bool
) -> tuple[bytes, str] | None:
    """A photo's bytes (the re-encoded image, or its thumbnail) and the image's content type;
    None when the inspection has no such photo."""
    column = inspection_photos.c.thumbnail if thumbnail else inspection_photos.c.data
    row = connection.execute(
        select(column, inspection_photos.c.content_type).where(
            inspection_photos.c.id == photo_id,
            inspection_photos.c.inspection_id == inspection_id,
        )
    ).first()
    if row is None:
        return None
    return bytes(row[0]), str(row[1])
