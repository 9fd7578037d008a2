"""Sensors, their datastreams and observations: the repository both backends share."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Float, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from arserver.errors import ArserverError
from arserver.ingest.validation import Reading, Streams
from arserver.store.schema import datastreams, ingest_counters, observations, sensors


class ConflictError(ArserverError):
    """The thing to create exists already (a sensor id, a device EUI)."""


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
    except IntegrityError as exc:
        raise ConflictError(
            f"a sensor with id {sensor['id']!r} or device {sensor.get('dev_eui')!r} exists already"
        ) from exc


def get_sensor(engine: Engine, sensor_id: str) -> dict[str, Any] | None:
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
    return result


def streams_of(connection: Connection, sensor_ids: set[str]) -> Streams:
    """{sensor id: {kind: datastream id}} for the given sensors that exist."""
    rows = connection.execute(
        select(sensors.c.id, datastreams.c.kind, datastreams.c.id.label("stream"))
        .join(datastreams, datastreams.c.sensor_pk == sensors.c.pk)
        .where(sensors.c.id.in_(sorted(sensor_ids)))
    ).all()
    streams: Streams = {}
    for row in rows:
        streams.setdefault(row.id, {})[row.kind] = row.stream
    return streams


def store_readings(connection: Connection, readings: list[Reading]) -> list[Reading]:
    """Insert readings in one multi-row statement, skipping ones already stored (same datastream
    and time, in the database or earlier in this batch); returns the readings that were new."""
    if not readings:
        return []
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    received = datetime.now(UTC)
    unique: dict[tuple[int, datetime], Reading] = {}
    for reading in readings:
        unique.setdefault((reading.datastream_id, _utc(reading.time)), reading)
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
    inserted = {(row[0], _utc(row[1])) for row in connection.execute(statement, rows)}
    return [reading for key, reading in unique.items() if key in inserted]


def _utc(moment: datetime) -> datetime:
    """Naive UTC, to compare times however the driver returns them."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def count_causes(connection: Connection, causes: Counter[str]) -> None:
    """Add to the ingest counters (created on first use)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    for cause, number in causes.items():
        statement = dialect.insert(ingest_counters).values(cause=cause, count=number)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["cause"], set_={"count": ingest_counters.c.count + number}
            )
        )


def ingest_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(select(ingest_counters.c.cause, ingest_counters.c.count)).all()
    return {str(row[0]): int(row[1]) for row in rows}


def history(
    engine: Engine,
    sensor_id: str,
    kind: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
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
    result = []
    for row in rows:
        time = row.time if row.time.tzinfo else row.time.replace(tzinfo=UTC)
        item: dict[str, Any] = {"time": time.isoformat(), "value": row.value, "kind": row.kind}
        if row.lon is not None:
            item["position"] = [row.lon, row.lat] + ([row.h] if row.h is not None else [])
        result.append(item)
    return result


def sensor_for_device(engine: Engine, dev_eui: str) -> tuple[str, dict[str, str]] | None:
    """(sensor id, {decoded field: kind}) of the sensor a LoRaWAN device feeds, if registered."""
    with engine.connect() as connection:
        row = connection.execute(
            select(sensors.c.id, sensors.c.device_fields).where(
                sensors.c.dev_eui == dev_eui.upper()
            )
        ).first()
    if row is None:
        return None
    return str(row.id), dict(row.device_fields or {})


BUCKETS = {"1m": 60, "15m": 900, "1h": 3600, "1d": 86400}


def _epoch(engine: Engine) -> Any:
    """Seconds since 1970 of an observation's time, in this database's SQL."""
    if engine.dialect.name == "postgresql":
        return func.extract("epoch", observations.c.time)
    return func.strftime("%s", observations.c.time)


def buckets(
    engine: Engine,
    sensor_id: str,
    kind: str | None,
    size_s: int,
    start: datetime | None,
    end: datetime | None,
) -> list[dict[str, Any]]:
    """Mean, min, max and count per time bucket of ``size_s`` seconds, oldest first. Buckets
    start at multiples of their size since 1970-01-01 UTC (so days are UTC days)."""
    bucket = (func.floor(func.cast(_epoch(engine), Float) / size_s) * size_s).label("bucket")
    query = (
        select(
            bucket,
            func.avg(observations.c.value).label("mean"),
            func.min(observations.c.value).label("min"),
            func.max(observations.c.value).label("max"),
            func.count().label("n"),
        )
        .join(datastreams, datastreams.c.id == observations.c.datastream_id)
        .join(sensors, sensors.c.pk == datastreams.c.sensor_pk)
        .where(sensors.c.id == sensor_id)
        .group_by(bucket)
        .order_by(bucket)
    )
    if kind is not None:
        query = query.where(datastreams.c.kind == kind)
    if start is not None:
        query = query.where(observations.c.time >= start)
    if end is not None:
        query = query.where(observations.c.time < end)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        {
            "start": datetime.fromtimestamp(float(row.bucket), UTC).isoformat(),
            "mean": float(row.mean),
            "min": float(row.min),
            "max": float(row.max),
            "count": int(row.n),
        }
        for row in rows
    ]


def latest_in_area(
    engine: Engine, bbox: tuple[float, float, float, float], kinds: set[str] | None = None
) -> list[dict[str, Any]]:
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
    result = []
    for row in rows:
        time = row.time if row.time.tzinfo else row.time.replace(tzinfo=UTC)
        location = [row.lon, row.lat] + ([row.h] if row.h is not None else [])
        result.append(
            {
                "sensor": row.id, "kind": row.kind, "unit": row.unit, "time": time.isoformat(),
                "value": row.value, "location": location,
            }
        )  # fmt: skip
    return result
