"""Retention of personal data on SQLite and PostgreSQL: positions of raw observations (they
locate whoever carries a mobile sensor) are removed after ``mobile_retention_days``, their
values stay and still count in the hourly aggregates."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from arserver.api.exports import trajectory
from arserver.config import Settings
from arserver.services.observations import ObservationWriter
from arserver.store.retention import apply_personal_retention, apply_retention, run_retention
from arserver.store.schema import datastreams, observations
from arserver.store.sensors import buckets, create_sensor, history
from tests.support import wait_until

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POSITIONS = "positions of raw observations"


def walk(engine: Engine) -> None:
    """A mobile sensor with one positioned reading per day for 40 days (value = days ago) and a
    fixed sensor with one reading per day and no positions."""
    create_sensor(engine, {"id": "bike-1", "name": "Bike"}, [("pm25", "ug/m3")])
    create_sensor(
        engine, {"id": "no2-1", "name": "NO2", "lon": 4.9, "lat": 52.37}, [("no2", "ug/m3")]
    )
    items: list[dict[str, Any]] = []
    for days in range(40):
        time = (NOW - timedelta(days=days, minutes=30)).isoformat()
        position = [4.88 + days / 1000, 52.37, 3.0]
        items.append({"sensor": "bike-1", "time": time, "value": days, "position": position})
        items.append({"sensor": "no2-1", "time": time, "value": days})
    assert ObservationWriter(engine).write(items, now=NOW).accepted == 80


def rows(engine: Engine) -> list[tuple[Any, ...]]:
    o = observations.c
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                select(o.datastream_id, o.time, o.value, o.lon, o.lat, o.h, o.source_id).order_by(
                    o.datastream_id, o.time
                )
            )
        ]


def positioned(engine: Engine) -> list[float]:
    """Values (days ago) of the readings that still have a position."""
    with engine.connect() as connection:
        return sorted(
            connection.execute(
                select(observations.c.value).where(observations.c.lon.is_not(None))
            ).scalars()
        )


def test_positions_older_than_the_window_are_removed_and_their_values_stay(
    settings: Settings, engine: Engine
) -> None:
    walk(engine)
    before = rows(engine)
    changed = apply_personal_retention(
        engine, settings.model_copy(update={"mobile_retention_days": 30.0}), now=NOW
    )
    # Readings 30..39 days ago (measured at least 30 days and 30 minutes before NOW).
    assert changed[POSITIONS] == 10
    assert positioned(engine) == [float(days) for days in range(30)]
    after = rows(engine)
    assert len(after) == len(before) == 80
    # Times and values of every reading, and everything of the fixed sensor, are untouched.
    assert [r[:3] for r in after] == [r[:3] for r in before]
    assert all(r[3:6] == (None, None, None) for r in after if r[2] >= 30)
    assert all(r[3:6] == b[3:6] for r, b in zip(after, before, strict=True) if r[2] < 30)
    # The raw series still shows the old values; the trajectory only the recent route.
    series = history(engine, "bike-1", None, None, None, 100)
    assert len(series) == 40
    assert [s["value"] for s in series if "position" not in s] == [float(d) for d in range(30, 40)]
    route = trajectory("bike-1", series)
    assert route["geometry"]["type"] == "LineString"
    assert len(route["geometry"]["coordinates"]) == 30


def test_running_twice_changes_nothing_more(settings: Settings, engine: Engine) -> None:
    walk(engine)
    window = settings.model_copy(update={"mobile_retention_days": 30.0})
    apply_personal_retention(engine, window, now=NOW)
    once = rows(engine)
    assert apply_personal_retention(engine, window, now=NOW)[POSITIONS] == 0
    assert rows(engine) == once


def test_none_keeps_positions_as_long_as_the_raw_observation(
    settings: Settings, engine: Engine
) -> None:
    walk(engine)
    kept = settings.model_copy(update={"mobile_retention_days": None})
    assert kept.mobile_retention is None
    assert POSITIONS not in apply_personal_retention(engine, kept, now=NOW)
    assert len(positioned(engine)) == 40
    # The raw window still ends them: rolled up and deleted with their rows.
    apply_retention(engine, raw=timedelta(days=20), aggregates=None, now=NOW)
    assert positioned(engine) == [float(days) for days in range(20)]


def test_the_default_window_is_thirty_days() -> None:
    assert Settings().mobile_retention == timedelta(days=30)


def test_hourly_aggregates_count_stripped_readings_once(settings: Settings, engine: Engine) -> None:
    walk(engine)
    expected = buckets(engine, "bike-1", None, 86400, None, None)
    apply_personal_retention(
        engine, settings.model_copy(update={"mobile_retention_days": 10.0}), now=NOW
    )
    assert buckets(engine, "bike-1", None, 86400, None, None) == expected
    apply_retention(engine, raw=timedelta(days=20), aggregates=None, now=NOW)
    assert buckets(engine, "bike-1", None, 86400, None, None) == expected
    # A stripped reading sent again is still a duplicate, not a second count in its hour.
    again = {"sensor": "bike-1", "time": (NOW - timedelta(days=15, minutes=30)).isoformat()}
    result = ObservationWriter(engine).write(
        [{**again, "value": 15, "position": [4.9, 52.4]}], now=NOW
    )
    assert (result.accepted, result.duplicate) == (0, 1)
    assert buckets(engine, "bike-1", None, 86400, None, None) == expected


def test_a_reading_committed_while_the_purge_runs_is_kept(
    settings: Settings, engine: Engine
) -> None:
    """A positioned old reading whose transaction is open when the purge starts: PostgreSQL's
    purge does not see it (and does not wait), SQLite's waits for the commit; either way the
    reading and its value are kept, and its position goes at the latest on the next run."""
    walk(engine)
    window = settings.model_copy(update={"mobile_retention_days": 30.0})
    late_time = NOW - timedelta(days=35, minutes=10)
    results: list[dict[str, int]] = []
    purge = threading.Thread(
        target=lambda: results.append(apply_personal_retention(engine, window, now=NOW))
    )
    with engine.connect() as writer:
        transaction = writer.begin()
        stream = writer.execute(
            select(datastreams.c.id).where(datastreams.c.kind == "pm25")
        ).scalar_one()
        writer.execute(
            insert(observations).values(
                datastream_id=stream, time=late_time, value=1234.5, lon=4.8765, lat=52.1234,
                h=1.0, received_at=NOW,
            )
        )  # fmt: skip
        purge.start()
        if engine.dialect.name == "postgresql":
            purge.join(timeout=30)
            assert [r[POSITIONS] for r in results] == [10]  # the open one's reading is unseen
        transaction.commit()
    purge.join(timeout=30)
    assert not purge.is_alive()
    results.append(apply_personal_retention(engine, window, now=NOW))
    assert sum(r[POSITIONS] for r in results) == 11
    o = observations.c
    with engine.connect() as connection:
        late = connection.execute(
            select(o.value, o.lon, o.lat, o.h).where(o.time == late_time)
        ).one()
    assert tuple(late) == (1234.5, None, None, None)
    assert len(rows(engine)) == 81


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_the_servers_retention_loop_purges_positions(settings: Settings, engine: Engine) -> None:
    create_sensor(engine, {"id": "bike-1", "name": "Bike"}, [("pm25", "ug/m3")])
    old = datetime.now(UTC) - timedelta(days=31)
    item = {"sensor": "bike-1", "time": old.isoformat(), "value": 1, "position": [4.87, 52.12]}
    assert ObservationWriter(engine).write([item]).accepted == 1
    stop = threading.Event()
    loop = threading.Thread(target=run_retention, args=(engine, settings, stop))
    loop.start()
    try:
        wait_until(lambda: positioned(engine) == [], what="the position to be removed")
    finally:
        stop.set()
        loop.join(timeout=30)
    assert [s["value"] for s in history(engine, "bike-1", None, None, None, 10)] == [1.0]
