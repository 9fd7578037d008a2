"""Sensors, their datastreams and observations: the repository both backends share."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict, cast

from sqlalchemy import Connection, Engine, Float, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from arserver.domain import Reading, StreamInfo, Streams
from arserver.errors import ConflictError
from arserver.store.schema import (
    datastreams,
    ingest_counters,
    observation_hours,
    observations,
    observed_properties,
    sensors,
)


class DatastreamRow(TypedDict):
    kind: str
    unit: str  # UCUM code


class SensorRow(TypedDict):
    """A registered sensor. ``lon``, ``lat``: WGS 84 degrees and ``h`` ellipsoidal metres of its
    fixed location (None for a mobile sensor); times timezone-aware UTC."""

    pk: int
    id: str
    name: str
    lon: float | None
    lat: float | None
    h: float | None
    dev_eui: str | None
    device_fields: dict[str, str] | None
    owner: str | None
    purpose: str | None
    asset_id: str | None
    feature_id: str | None
    placed_at: datetime | None
    removed_at: datetime | None
    created_at: datetime
    public: bool
    contact: str | None
    kvk: str | None
    sensor_type: str | None
    area: dict[str, Any] | None  # GeoJSON Polygon or MultiPolygon, WGS 84
    themes: list[str] | None
    personal_data: bool
    privacy_statement: str | None
    legal_ground: str | None
    project: str | None
    datastreams: list[DatastreamRow]


class ObservationItem(TypedDict):
    """One raw observation as the API gives it: ``time`` ISO 8601 UTC, ``position`` the mobile
    sensor's own [lon, lat] or [lon, lat, h] when it sent one."""

    time: str
    value: float
    kind: str
    position: NotRequired[list[float]]


class LatestItem(TypedDict):
    """The newest value of a datastream, at its sensor's fixed ``location`` ([lon, lat] or
    [lon, lat, h])."""

    sensor: str
    kind: str
    unit: str
    time: str
    value: float
    location: list[float]


class Bucket(TypedDict):
    """Statistics of one time bucket starting at ``start`` (ISO 8601 UTC)."""

    start: str
    mean: float
    min: float
    max: float
    count: int


def create_sensor(engine: Engine, sensor: dict[str, Any], streams: list[tuple[str, str]]) -> None:
    """Register a sensor with its datastreams (kind, unit) in one transaction."""
    try:
        with engine.begin() as connection:
            pk = connection.execute(
                insert(sensors)
                .values(created_at=datetime.now(UTC), **sensor)
                .returning(sensors.c.pk)
            ).scalar_one()
            connection.execute(
                insert(datastreams),
                [{"sensor_pk": pk, "kind": kind, "unit": unit} for kind, unit in streams],
            )
            _add_observed_properties(connection, {kind for kind, _ in streams})
    except IntegrityError as exc:
        raise ConflictError(
            f"a sensor with id {sensor['id']!r} or device {sensor.get('dev_eui')!r} exists already"
        ) from exc


def _add_observed_properties(connection: Connection, kinds: set[str]) -> None:
    """Give each kind not seen before its observed-property row (ids in order of arrival)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    for kind in sorted(kinds):
        connection.execute(
            dialect.insert(observed_properties).values(kind=kind).on_conflict_do_nothing()
        )


def get_sensor(engine: Engine, sensor_id: str) -> SensorRow | None:
    """A sensor with its ``datastreams`` (list of {kind, unit}); None if unknown."""
    with engine.connect() as connection:
        row = connection.execute(select(sensors).where(sensors.c.id == sensor_id)).first()
        if row is None:
            return None
        streams = connection.execute(
            select(datastreams.c.kind, datastreams.c.unit)
            .where(datastreams.c.sensor_pk == row.pk)
            .order_by(datastreams.c.id)
        ).all()
    result = dict(row._mapping)
    result["datastreams"] = [{"kind": s.kind, "unit": s.unit} for s in streams]
    return cast(SensorRow, result)


def list_sensors(engine: Engine, *, public_only: bool) -> list[SensorRow]:
    """Every registered sensor (only those with ``public`` set when ``public_only``) with its
    datastreams, ordered by id; two queries whatever the number of sensors."""
    query = select(sensors).order_by(sensors.c.id)
    if public_only:
        query = query.where(sensors.c.public.is_(True))
    stream_query = select(datastreams.c.sensor_pk, datastreams.c.kind, datastreams.c.unit)
    if public_only:
        listed = select(sensors.c.pk).where(sensors.c.public.is_(True))
        stream_query = stream_query.where(datastreams.c.sensor_pk.in_(listed))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
        streams = connection.execute(stream_query.order_by(datastreams.c.id)).all()
    by_sensor: dict[int, list[DatastreamRow]] = {}
    for stream in streams:
        by_sensor.setdefault(stream.sensor_pk, []).append(
            {"kind": stream.kind, "unit": stream.unit}
        )
    return [
        cast(SensorRow, {**row._mapping, "datastreams": by_sensor.get(row.pk, [])}) for row in rows
    ]


def update_sensor(engine: Engine, sensor_id: str, values: dict[str, Any]) -> bool:
    """Change the given columns of a sensor; False if there is no such sensor."""
    with engine.begin() as connection:
        changed = connection.execute(
            update(sensors).where(sensors.c.id == sensor_id).values(**values)
        ).rowcount
    return bool(changed)


def streams_of(
    connection: Connection, sensor_ids: set[str]
) -> tuple[Streams, dict[int, StreamInfo]]:
    """For the given sensors that exist, in one query: {sensor id: {kind: datastream id}} (for
    checking readings) and {datastream id: its sensor, kind, unit and the sensor's fixed
    location} (for placing them on the live overlay)."""
    rows = connection.execute(
        select(
            sensors.c.id, datastreams.c.kind, datastreams.c.id.label("stream"),
            datastreams.c.unit, sensors.c.lon, sensors.c.lat, sensors.c.h,
        )
        .join(datastreams, datastreams.c.sensor_pk == sensors.c.pk)
        .where(sensors.c.id.in_(sorted(sensor_ids)))
    ).all()  # fmt: skip
    streams: Streams = {}
    info: dict[int, StreamInfo] = {}
    for row in rows:
        streams.setdefault(row.id, {})[row.kind] = row.stream
        located = row.lon is not None and row.lat is not None
        info[row.stream] = StreamInfo(
            row.id, row.kind, row.unit, (row.lon, row.lat, row.h) if located else None
        )
    return streams, info


def store_readings(connection: Connection, readings: list[Reading]) -> list[Reading]:
    """Insert readings in one multi-row statement, skipping ones already stored (same datastream
    and time, in the database or earlier in this batch); returns the readings that were new."""
    if not readings:
        return []
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    received = datetime.now(UTC)
    unique: dict[tuple[int, datetime], Reading] = {}
    for reading in readings:
        unique.setdefault((reading.datastream_id, reading.time.astimezone(UTC)), reading)
    rows = []
    for reading in unique.values():
        lon, lat, h = reading.position if reading.position else (None, None, None)
        rows.append(
            {
                "datastream_id": reading.datastream_id, "time": reading.time,
                "value": reading.value, "lon": lon, "lat": lat, "h": h,
                "source_id": reading.source_id, "received_at": received,
            }
        )  # fmt: skip
    statement = (
        dialect.insert(observations)
        .on_conflict_do_nothing(index_elements=["datastream_id", "time"])
        .returning(observations.c.datastream_id, observations.c.time)
    )
    # RETURNING lists exactly the rows that went in (rowcount differs per driver).
    inserted = {(row[0], row[1]) for row in connection.execute(statement, rows)}
    return [reading for key, reading in unique.items() if key in inserted]


#: Rows per cause of the ingest counters (see the table in the schema).
COUNTER_SHARDS = 16


def count_causes(connection: Connection, causes: Counter[str]) -> None:
    """Add to the ingest counters (created on first use), in one shard picked at random for
    the whole batch, in a fixed order of causes (no two writers lock rows in opposite
    orders)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    shard = random.randrange(COUNTER_SHARDS)
    for cause in sorted(causes):
        number = causes[cause]
        statement = dialect.insert(ingest_counters).values(cause=cause, shard=shard, count=number)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["cause", "shard"],
                set_={"count": ingest_counters.c.count + number},
            )
        )


def ingest_counts(engine: Engine) -> dict[str, int]:
    """How many readings were accepted, and rejected or dropped per cause, so far."""
    c = ingest_counters.c
    with engine.connect() as connection:
        rows = connection.execute(select(c.cause, func.sum(c.count)).group_by(c.cause)).all()
    return {str(row[0]): int(row[1]) for row in rows}


def history(
    engine: Engine,
    sensor_id: str,
    kind: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[ObservationItem]:
    """Raw observations of one datastream, newest first."""
    query = (
        select(
            observations.c.time, observations.c.value, datastreams.c.kind, observations.c.lon,
            observations.c.lat, observations.c.h,
        )
        .join(datastreams, datastreams.c.id == observations.c.datastream_id)
        .join(sensors, sensors.c.pk == datastreams.c.sensor_pk)
        .where(sensors.c.id == sensor_id)
        .order_by(observations.c.time.desc())
        .limit(limit)
    )  # fmt: skip
    if kind is not None:
        query = query.where(datastreams.c.kind == kind)
    if start is not None:
        query = query.where(observations.c.time >= start)
    if end is not None:
        query = query.where(observations.c.time < end)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    result: list[ObservationItem] = []
    for row in rows:
        item: ObservationItem = {"time": row.time.isoformat(), "value": row.value, "kind": row.kind}
        if row.lon is not None:
            item["position"] = [row.lon, row.lat] + ([row.h] if row.h is not None else [])
        result.append(item)
    return result


def sensors_for_devices(
    engine: Engine, dev_euis: set[str]
) -> dict[str, tuple[str, dict[str, str]]]:
    """{device EUI (upper case): (sensor id, {decoded field: kind})} of the registered ones."""
    if not dev_euis:
        return {}
    with engine.connect() as connection:
        rows = connection.execute(
            select(sensors.c.dev_eui, sensors.c.id, sensors.c.device_fields).where(
                sensors.c.dev_eui.in_(sorted(e.upper() for e in dev_euis))
            )
        ).all()
    return {str(row.dev_eui): (str(row.id), dict(row.device_fields or {})) for row in rows}


BUCKETS = {"1m": 60, "15m": 900, "1h": 3600, "1d": 86400}


def epoch_seconds(bind: Engine | Connection, column: Any) -> Any:
    """Seconds since 1970 of a time column, in the SQL of ``bind``'s database."""
    if bind.dialect.name == "postgresql":
        return func.extract("epoch", column)
    return func.strftime("%s", column)


def buckets(
    engine: Engine,
    sensor_id: str,
    kind: str | None,
    size_s: int,
    start: datetime | None,
    end: datetime | None,
) -> list[Bucket]:
    """Mean, min, max and count per time bucket of ``size_s`` seconds, oldest first. Buckets
    start at multiples of their size since 1970-01-01 UTC (so days are UTC days).

    Buckets of an hour or more also count the hourly aggregates that retention left of expired
    raw readings (an aggregate hour is in the window when its start is); shorter buckets exist
    only within the raw window."""
    sums: dict[float, list[float]] = {}  # bucket -> [count, sum, min, max]
    parts = [(observations, observations.c.time, _raw_bucket_columns())]
    if size_s >= 3600:
        parts.append((observation_hours, observation_hours.c.start, _hour_bucket_columns()))
    with engine.connect() as connection:
        for table, time_column, columns in parts:
            seconds = func.cast(epoch_seconds(engine, time_column), Float)
            bucket = func.floor(seconds / size_s) * size_s
            query = (
                select(bucket.label("bucket"), *columns)
                .join(datastreams, datastreams.c.id == table.c.datastream_id)
                .join(sensors, sensors.c.pk == datastreams.c.sensor_pk)
                .where(sensors.c.id == sensor_id)
                .group_by(bucket)
            )
            if kind is not None:
                query = query.where(datastreams.c.kind == kind)
            if start is not None:
                query = query.where(time_column >= start)
            if end is not None:
                query = query.where(time_column < end)
            for row in connection.execute(query):
                n, total, low, high = float(row.n), float(row.total), row.low, row.high
                merged = sums.get(float(row.bucket))
                if merged is None:
                    sums[float(row.bucket)] = [n, total, float(low), float(high)]
                else:
                    merged[0] += n
                    merged[1] += total
                    merged[2] = min(merged[2], float(low))
                    merged[3] = max(merged[3], float(high))
    return [
        {
            "start": datetime.fromtimestamp(bucket, UTC).isoformat(),
            "mean": total / n,
            "min": low,
            "max": high,
            "count": int(n),
        }
        for bucket, (n, total, low, high) in sorted(sums.items())
    ]


def _raw_bucket_columns() -> list[Any]:
    value = observations.c.value
    return [
        func.count().label("n"), func.sum(value).label("total"),
        func.min(value).label("low"), func.max(value).label("high"),
    ]  # fmt: skip


def _hour_bucket_columns() -> list[Any]:
    h = observation_hours.c
    return [
        func.sum(h.count).label("n"), func.sum(h.sum).label("total"),
        func.min(h.min).label("low"), func.max(h.max).label("high"),
    ]  # fmt: skip


def latest_in_area(
    engine: Engine, bbox: tuple[float, float, float, float], kinds: set[str] | None = None
) -> list[LatestItem]:
    """The newest value of every datastream whose sensor stands in ``bbox`` (WGS 84)."""
    west, south, east, north = bbox
    newest = (
        select(observations.c.datastream_id, func.max(observations.c.time).label("time"))
        .group_by(observations.c.datastream_id)
        .subquery()
    )
    query = (
        select(
            sensors.c.id, sensors.c.lon, sensors.c.lat, sensors.c.h, datastreams.c.kind,
            datastreams.c.unit, observations.c.time, observations.c.value,
        )
        .join(datastreams, datastreams.c.sensor_pk == sensors.c.pk)
        .join(newest, newest.c.datastream_id == datastreams.c.id)
        .join(
            observations,
            (observations.c.datastream_id == newest.c.datastream_id)
            & (observations.c.time == newest.c.time),
        )
        .where(sensors.c.lon.between(west, east), sensors.c.lat.between(south, north))
        .order_by(sensors.c.id, datastreams.c.kind)
    )  # fmt: skip
    if kinds:
        query = query.where(datastreams.c.kind.in_(sorted(kinds)))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    result: list[LatestItem] = []
    for row in rows:
        location = [row.lon, row.lat] + ([row.h] if row.h is not None else [])
        result.append(
            {
                "sensor": row.id, "kind": row.kind, "unit": row.unit, "time": row.time.isoformat(),
                "value": row.value, "location": location,
            }
        )  # fmt: skip
    return result
