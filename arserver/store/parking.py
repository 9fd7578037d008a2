"""Parking places (zones and car parks), the readings of their bays and counters, and the
history of their occupancy: the repository both backends share.

Positions are WGS 84 degrees; times timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypedDict, cast

from sqlalchemy import Connection, Float, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from arserver.errors import ConflictError
from arserver.store.schema import (
    datastreams,
    observations,
    parking_occupancy,
    parking_places,
    sensors,
)
from arserver.store.sensors import epoch_seconds

#: The datastream kinds of bay sensors and of car-park counters.
BAY_KIND = "parking_bay"
COUNTER_KIND = "free_spaces"

Extent = tuple[float, float, float, float]


class PlaceRow(TypedDict):
    """A stored place. ``area``: outer ring [[lon, lat], ...] or None; ``bay_sensors``: the
    named bay sensors of a zone, None when they are the ones standing in its area."""

    pk: int
    id: str
    kind: str
    name: str
    capacity: int | None
    lon: float
    lat: float
    area: list[list[float]] | None
    west: float
    south: float
    east: float
    north: float
    bay_sensors: list[str] | None
    counter_sensor: str | None
    source: str
    operator: str | None
    is_open: bool | None
    created_at: datetime
    updated_at: datetime


def insert_place(connection: Connection, values: dict[str, Any]) -> int:
    """Store a new place; :class:`ConflictError` if its id exists. Returns its key."""
    now = datetime.now(UTC)
    try:
        with connection.begin_nested():
            return int(
                connection.execute(
                    insert(parking_places)
                    .values(created_at=now, updated_at=now, **values)
                    .returning(parking_places.c.pk)
                ).scalar_one()
            )
    except IntegrityError as exc:
        raise ConflictError(f"a parking place with id {values['id']!r} exists already") from exc


def update_place(connection: Connection, place_id: str, values: dict[str, Any]) -> None:
    connection.execute(
        update(parking_places)
        .where(parking_places.c.id == place_id)
        .values(updated_at=datetime.now(UTC), **values)
    )


def get_place(connection: Connection, place_id: str) -> PlaceRow | None:
    row = connection.execute(select(parking_places).where(parking_places.c.id == place_id)).first()
    return None if row is None else cast(PlaceRow, dict(row._mapping))


def list_places(
    connection: Connection,
    *,
    kind: str | None = None,
    bbox: Extent | None = None,
    limit: int | None = None,
) -> list[PlaceRow]:
    """Places ordered by id; with ``bbox`` those whose extent meets it."""
    query = select(parking_places).order_by(parking_places.c.id)
    if kind is not None:
        query = query.where(parking_places.c.kind == kind)
    if bbox is not None:
        west, south, east, north = bbox
        query = query.where(
            parking_places.c.west <= east,
            parking_places.c.east >= west,
            parking_places.c.south <= north,
            parking_places.c.north >= south,
        )
    if limit is not None:
        query = query.limit(limit)
    return [cast(PlaceRow, dict(row._mapping)) for row in connection.execute(query)]


def delete_place(connection: Connection, place_id: str) -> bool:
    pk = connection.execute(
        select(parking_places.c.pk).where(parking_places.c.id == place_id)
    ).scalar()
    if pk is None:
        return False
    connection.execute(delete(parking_occupancy).where(parking_occupancy.c.place_pk == pk))
    connection.execute(delete(parking_places).where(parking_places.c.pk == pk))
    return True


def places_of_sensors(connection: Connection, sensor_ids: set[str]) -> list[PlaceRow]:
    """The places a reading of these sensors can change: car parks whose counter they are,
    zones that name them, and zones whose extent holds one of them that is a bay sensor
    (the caller checks the area itself)."""
    if not sensor_ids:
        return []
    ids = sorted(sensor_ids)
    located = connection.execute(
        select(sensors.c.lon, sensors.c.lat)
        .join(datastreams, datastreams.c.sensor_pk == sensors.c.pk)
        .where(sensors.c.id.in_(ids), datastreams.c.kind == BAY_KIND, sensors.c.lon.is_not(None))
    ).all()
    conditions: list[Any] = [parking_places.c.counter_sensor.in_(ids)]
    for lon, lat in located:
        conditions.append(
            and_(
                parking_places.c.kind == "zone",
                parking_places.c.west <= lon,
                parking_places.c.east >= lon,
                parking_places.c.south <= lat,
                parking_places.c.north >= lat,
            )
        )
    rows = connection.execute(select(parking_places).where(or_(*conditions))).all()
    found = {row.id: cast(PlaceRow, dict(row._mapping)) for row in rows}
    # Zones that name one of the sensors (JSON lists: checked here, they are few).
    for row in connection.execute(
        select(parking_places).where(parking_places.c.bay_sensors.is_not(None))
    ):
        named = row.bay_sensors or []
        if sensor_ids.intersection(named):
            found[row.id] = cast(PlaceRow, dict(row._mapping))
    return list(found.values())


def bay_sensors_in(connection: Connection, extent: Extent) -> list[tuple[str, float, float]]:
    """(id, lon, lat) of the bay sensors standing within ``extent``."""
    west, south, east, north = extent
    rows = connection.execute(
        select(sensors.c.id, sensors.c.lon, sensors.c.lat)
        .join(datastreams, datastreams.c.sensor_pk == sensors.c.pk)
        .where(
            datastreams.c.kind == BAY_KIND,
            sensors.c.lon.between(west, east),
            sensors.c.lat.between(south, north),
        )
        .order_by(sensors.c.id)
    ).all()
    return [(str(r.id), float(r.lon), float(r.lat)) for r in rows]


class BayReading(NamedTuple):
    """A bay sensor's newest ``value`` (1 occupied, 0 free; None: never reported) at ``time``,
    and ``unchanged_since``: the earliest reading after the last one with another value (the
    first reading when it never changed)."""

    sensor_id: str
    value: float | None
    time: datetime | None
    unchanged_since: datetime | None


def _newest_readings(ids: list[str], kind: str) -> tuple[Any, Any]:
    """Subqueries of the ``kind`` datastreams of these sensors (sensor, stream) and of the
    newest reading of each (datastream_id, time, value)."""
    o = observations.c
    stream = (
        select(sensors.c.id.label("sensor"), datastreams.c.id.label("stream"))
        .join(datastreams, datastreams.c.sensor_pk == sensors.c.pk)
        .where(sensors.c.id.in_(ids), datastreams.c.kind == kind)
        .subquery()
    )
    newest_time = (
        select(o.datastream_id, func.max(o.time).label("time"))
        .where(o.datastream_id.in_(select(stream.c.stream)))
        .group_by(o.datastream_id)
        .subquery()
    )
    newest = (
        select(o.datastream_id, o.time, o.value)
        .join(
            newest_time,
            (o.datastream_id == newest_time.c.datastream_id) & (o.time == newest_time.c.time),
        )
        .subquery()
    )
    return stream, newest


def bay_states(connection: Connection, sensor_ids: Sequence[str]) -> list[BayReading]:
    """The state of each bay sensor, in three queries whatever their number; ordered by id."""
    if not sensor_ids:
        return []
    ids = sorted(set(sensor_ids))
    o = observations.c
    stream, newest = _newest_readings(ids, BAY_KIND)
    last_other = (
        select(o.datastream_id, func.max(o.time).label("time"))
        .join(newest, newest.c.datastream_id == o.datastream_id)
        .where(o.value != newest.c.value)
        .group_by(o.datastream_id)
        .subquery()
    )
    since_rows = connection.execute(
        select(o.datastream_id, func.min(o.time).label("since"))
        .join(newest, newest.c.datastream_id == o.datastream_id)
        .outerjoin(last_other, last_other.c.datastream_id == o.datastream_id)
        .where(or_(last_other.c.time.is_(None), o.time > last_other.c.time))
        .group_by(o.datastream_id)
    ).all()
    since = {int(r.datastream_id): r.since for r in since_rows}
    rows = connection.execute(
        select(stream.c.sensor, stream.c.stream, newest.c.time, newest.c.value).outerjoin(
            newest, newest.c.datastream_id == stream.c.stream
        )
    ).all()
    states = {
        str(r.sensor): BayReading(
            str(r.sensor),
            None if r.value is None else float(r.value),
            r.time,
            since.get(int(r.stream)),
        )
        for r in rows
    }
    for sensor in ids:
        states.setdefault(sensor, BayReading(sensor, None, None, None))
    return [states[sensor] for sensor in ids]


def counter_readings(
    connection: Connection, sensor_ids: Iterable[str]
) -> dict[str, tuple[datetime, float]]:
    """{counter sensor id: (time, free spaces)} of the newest reading of each."""
    ids = sorted(set(sensor_ids))
    if not ids:
        return {}
    stream, newest = _newest_readings(ids, COUNTER_KIND)
    rows = connection.execute(
        select(stream.c.sensor, newest.c.time, newest.c.value).join(
            newest, newest.c.datastream_id == stream.c.stream
        )
    ).all()
    return {str(r.sensor): (r.time, float(r.value)) for r in rows}


def counter_history(
    connection: Connection, sensor_ids: Iterable[str], since: datetime, bucket_s: int = 900
) -> dict[str, list[tuple[float, float]]]:
    """{counter sensor id: [(bucket start, epoch seconds; mean free spaces), ...]} of the raw
    readings since ``since``, per ``bucket_s`` bucket, oldest first: a car park's history as
    its counter counted it (backfilled and imported readings included). Counts are as stored
    (not clamped)."""
    ids = sorted(set(sensor_ids))
    if not ids:
        return {}
    o = observations.c
    stream = (
        select(sensors.c.id.label("sensor"), datastreams.c.id.label("stream"))
        .join(datastreams, datastreams.c.sensor_pk == sensors.c.pk)
        .where(sensors.c.id.in_(ids), datastreams.c.kind == COUNTER_KIND)
        .subquery()
    )
    seconds = func.cast(epoch_seconds(connection, o.time), Float)
    bucket = (func.floor(seconds / bucket_s) * bucket_s).label("bucket")
    query = (
        select(stream.c.sensor, bucket, func.avg(o.value).label("free"))
        .join(stream, stream.c.stream == o.datastream_id)
        .where(o.time >= since)
        .group_by(stream.c.sensor, bucket)
        .order_by(stream.c.sensor, bucket)
    )
    result: dict[str, list[tuple[float, float]]] = {}
    for row in connection.execute(query):
        result.setdefault(str(row.sensor), []).append((float(row.bucket), float(row.free)))
    return result


def add_occupancy(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Append occupancy rows (place_pk, time, capacity, occupied, free, unknown); a row for a
    place and time already stored is left as it is."""
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(
        dialect.insert(parking_occupancy).on_conflict_do_nothing(
            index_elements=["place_pk", "time"]
        ),
        rows,
    )


def occupancy_buckets(
    connection: Connection,
    place_pk: int,
    size_s: int,
    start: datetime | None,
    end: datetime | None,
) -> list[dict[str, Any]]:
    """Per time bucket of ``size_s`` seconds (from 1970-01-01 UTC), oldest first: the mean
    occupancy rate of the rows in it (the known part), the mean free and unknown spaces, the
    number of rows. Buckets without rows are left out."""
    table = parking_occupancy.c
    bucket = func.floor(func.cast(epoch_seconds(connection, table.time), Float) / size_s) * size_s
    known = table.occupied + table.free
    rate = func.avg(func.cast(table.occupied, Float) / func.nullif(known, 0))
    query = (
        select(
            bucket.label("bucket"),
            rate.label("rate"),
            func.avg(table.free).label("free"),
            func.avg(table.unknown).label("unknown"),
            func.avg(table.capacity).label("capacity"),
            func.count().label("n"),
        )
        .where(table.place_pk == place_pk)
        .group_by(bucket)
        .order_by(bucket)
    )
    if start is not None:
        query = query.where(table.time >= start)
    if end is not None:
        query = query.where(table.time < end)
    return [
        {
            "start": datetime.fromtimestamp(float(r.bucket), UTC).isoformat(),
            "occupancy": None if r.rate is None else float(r.rate),
            "free": float(r.free),
            "unknown": float(r.unknown),
            "capacity": float(r.capacity),
            "count": int(r.n),
        }
        for r in connection.execute(query)
    ]


def occupancy_rows(
    connection: Connection, place_pks: Sequence[int], since: datetime
) -> dict[int, list[tuple[datetime, float, float, float, float]]]:
    """{place key: [(time, capacity, occupied, free, unknown), ...]} since ``since``, oldest
    first: the history the forecaster learns from."""
    result: dict[int, list[tuple[datetime, float, float, float, float]]] = {}
    if not place_pks:
        return result
    t = parking_occupancy.c
    query = (
        select(t.place_pk, t.time, t.capacity, t.occupied, t.free, t.unknown)
        .where(t.place_pk.in_(sorted(set(place_pks))), t.time >= since)
        .order_by(t.place_pk, t.time)
    )
    for row in connection.execute(query):
        result.setdefault(int(row.place_pk), []).append(
            (
                row.time,
                float(row.capacity),
                float(row.occupied),
                float(row.free),
                float(row.unknown),
            )
        )
    return result
