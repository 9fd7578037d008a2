"""The parking repository on both backends: places, bay states and counter readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from arserver.domain import Reading
from arserver.errors import ConflictError
from arserver.store import parking as store
from arserver.store.sensors import create_sensor, store_readings, streams_of

T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
ZONE = {
    "id": "zone-1", "kind": "zone", "name": "P1", "capacity": 3, "lon": 5.1, "lat": 52.1,
    "area": [[5.0, 52.0], [5.2, 52.0], [5.2, 52.2], [5.0, 52.0]],
    "west": 5.0, "south": 52.0, "east": 5.2, "north": 52.2, "source": "api",
}  # fmt: skip


def _bay(engine: Engine, sensor_id: str, lon: float, values: list[float]) -> None:
    create_sensor(
        engine, {"id": sensor_id, "name": sensor_id, "lon": lon, "lat": 52.1},
        [("parking_bay", "1")],
    )  # fmt: skip
    with engine.begin() as connection:
        streams, _ = streams_of(connection, {sensor_id})
        stream = streams[sensor_id]["parking_bay"]
        readings = [
            Reading(i, stream, T0 + timedelta(minutes=10 * i), v, None, None)
            for i, v in enumerate(values)
        ]
        store_readings(connection, readings)


def test_bay_states_give_the_newest_value_and_since_when_it_holds(engine: Engine) -> None:
    _bay(engine, "bay-a", 5.1, [0, 1, 1, 1])  # occupied since the second reading
    _bay(engine, "bay-b", 5.15, [1, 1])  # never changed: since its first reading
    _bay(engine, "bay-c", 5.12, [])  # never reported
    with engine.connect() as connection:
        states = store.bay_states(connection, ["bay-c", "bay-a", "bay-b", "bay-a"])
    assert [s.sensor_id for s in states] == ["bay-a", "bay-b", "bay-c"]
    a, b, c = states
    assert (a.value, a.time, a.unchanged_since) == (1.0, T0 + timedelta(minutes=30),
                                                    T0 + timedelta(minutes=10))  # fmt: skip
    assert (b.value, b.unchanged_since) == (1.0, T0)
    assert (c.value, c.time, c.unchanged_since) == (None, None, None)


def test_places_of_sensors_finds_zones_by_extent_and_car_parks_by_counter(
    engine: Engine,
) -> None:
    _bay(engine, "bay-in", 5.1, [1])
    _bay(engine, "bay-out", 6.0, [1])
    create_sensor(
        engine, {"id": "garage", "name": "garage", "lon": 5.3, "lat": 52.3},
        [("free_spaces", "{spaces}")],
    )  # fmt: skip
    garage = {**ZONE, "id": "garage", "kind": "car_park", "area": None, "counter_sensor": "garage"}
    with engine.begin() as connection:
        store.insert_place(connection, ZONE)
        store.insert_place(connection, garage)
        with pytest.raises(ConflictError):
            store.insert_place(connection, ZONE)
    with engine.connect() as connection:
        assert [p["id"] for p in store.places_of_sensors(connection, {"bay-in"})] == ["zone-1"]
        assert store.places_of_sensors(connection, {"bay-out"}) == []
        assert [p["id"] for p in store.places_of_sensors(connection, {"garage"})] == ["garage"]
        assert [b[0] for b in store.bay_sensors_in(connection, (5.0, 52.0, 5.2, 52.2))] == [
            "bay-in"
        ]


def test_occupancy_rows_come_back_in_buckets(engine: Engine) -> None:
    with engine.begin() as connection:
        pk = store.insert_place(connection, ZONE)
        store.add_occupancy(
            connection,
            [
                {"place_pk": pk, "time": T0 + timedelta(minutes=m), "capacity": 4.0,
                 "occupied": occ, "free": 4.0 - occ, "unknown": 0.0}
                for m, occ in ((0, 1.0), (5, 3.0), (20, 4.0))
            ],
        )  # fmt: skip
    with engine.connect() as connection:
        buckets = store.occupancy_buckets(connection, pk, 900, None, None)
        rows = store.occupancy_rows(connection, [pk], T0)
    assert [b["count"] for b in buckets] == [2, 1]
    assert buckets[0]["occupancy"] == pytest.approx(0.5)
    assert buckets[1]["occupancy"] == pytest.approx(1.0)
    assert [r[2] for r in rows[pk]] == [1.0, 3.0, 4.0]
