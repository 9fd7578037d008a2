"""The parking service on both backends: places, occupancy from bay and counter readings through
the observation writer, history rows, live events, forecasts."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from arserver.domain import Change
from arserver.errors import ConflictError, InputError, NotFoundError
from arserver.services.observations import ObservationWriter
from arserver.services.parking import NewPlace, ParkingService, PlaceState
from arserver.store import parking as store
from arserver.store.retention import apply_retention
from arserver.store.schema import parking_occupancy
from arserver.store.sensors import create_sensor

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
#: A 40 m x 40 m square near Utrecht Centraal, WGS 84.
SQUARE = [[5.1100, 52.0900], [5.1106, 52.0900], [5.1106, 52.0904], [5.1100, 52.0904]]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Bus:
    """Keeps every batch published."""

    def __init__(self) -> None:
        self.batches: list[list[Change]] = []

    def publish(self, changes: Any) -> None:
        self.batches.append(list(changes))

    def parking(self) -> list[Change]:
        return [c for batch in self.batches for c in batch if c.layer == "parking"]


def _service(engine: Engine) -> tuple[ParkingService, ObservationWriter, Bus, Clock]:
    bus, clock = Bus(), Clock(T0)
    parking = ParkingService(engine, bus, now=clock)  # type: ignore[arg-type]
    writer = ObservationWriter(engine, parking=parking)
    return parking, writer, bus, clock


def _bays(engine: Engine, count: int, lon: float = 5.1102) -> list[str]:
    ids = [f"bay-{i}" for i in range(count)]
    for i, sensor in enumerate(ids):
        create_sensor(
            engine, {"id": sensor, "name": sensor, "lon": lon + 0.00001 * i, "lat": 52.0902},
            [("parking_bay", "1")],
        )  # fmt: skip
    return ids


def _write(writer: ObservationWriter, at: datetime, values: dict[str, float]) -> None:
    result = writer.write(
        [{"sensor": s, "time": at.isoformat(), "value": v} for s, v in values.items()],
        now=at + timedelta(seconds=1),
    )
    assert result.accepted == len(values), result


def _history_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(parking_occupancy)).scalar())


def test_bay_readings_give_the_zone_its_occupancy_live_and_in_history(engine: Engine) -> None:
    parking, writer, bus, clock = _service(engine)
    bays = _bays(engine, 4)
    create_sensor(
        engine, {"id": "bay-far", "name": "far", "lon": 5.2, "lat": 52.2}, [("parking_bay", "1")]
    )
    zone = parking.create(NewPlace(kind="zone", name="P2", id="p2", capacity=4, area=SQUARE))
    assert zone.occupancy.unknown == 4
    assert zone.occupancy.rate is None
    assert bus.parking()[-1].key == "parking:p2"

    clock.now = T0 + timedelta(minutes=1)
    _write(writer, clock.now, {bays[0]: 1, bays[1]: 1, bays[2]: 0, "bay-far": 1})
    event = bus.parking()[-1]
    assert (event.layer, event.key, event.kind) == ("parking", "parking:p2", "occupancy")
    assert (event.data["occupied"], event.data["free"], event.data["unknown"]) == (2, 1, 1)
    assert event.data["value"] == pytest.approx(2 / 3)
    assert event.data["fresh"] == clock.now.isoformat()
    assert event.data["forecast"]
    assert {f["method"] for f in event.data["forecast"]} == {"last_value"}
    assert event.data["forecast_30m"] == pytest.approx(2 / 3, abs=1e-3)
    state = parking.get("p2")
    assert state.occupancy.occupied == 2
    assert state.to_json()["area"][0] == SQUARE[0]
    assert _history_rows(engine) == 2  # at creation and after the readings


def test_silent_and_stuck_bays_turn_unknown_on_refresh(engine: Engine) -> None:
    parking, writer, bus, clock = _service(engine)
    bays = _bays(engine, 2)
    parking.create(NewPlace(kind="zone", name="P2", id="p2", area=SQUARE, bays=bays))
    _write(writer, T0, {bays[0]: 0, bays[1]: 1})
    clock.now = T0 + timedelta(hours=6)
    _write(writer, clock.now, {bays[1]: 1})
    published = len(bus.parking())
    assert parking.refresh() == []
    assert len(bus.parking()) == published
    clock.now = T0 + timedelta(hours=13)  # bay-0 silent for 13 h
    (event,) = parking.refresh()
    assert (event.data["free"], event.data["occupied"], event.data["unknown"]) == (0, 1, 1)
    assert event.data["silent_bays"] == [bays[0]]
    assert "silent_bays" in event.data["flags"]
    clock.now = T0 + timedelta(hours=73)  # bay-1 occupied for 73 h and silent since 67 h
    (event,) = parking.refresh()
    assert event.data["unknown"] == 2
    assert event.data["value"] is None
    assert event.data["forecast"] == []  # nothing known: no forecast


def test_history_rows_on_change_and_at_least_every_15_minutes(engine: Engine) -> None:
    parking, writer, _bus, clock = _service(engine)
    bays = _bays(engine, 1)
    parking.create(NewPlace(kind="zone", name="P", id="p", area=SQUARE))
    rows = _history_rows(engine)
    for minute in (1, 2, 3):  # the same state again and again: no new row
        clock.now = T0 + timedelta(minutes=minute)
        _write(writer, clock.now, {bays[0]: 1})
    assert _history_rows(engine) == rows + 1
    clock.now = T0 + timedelta(minutes=17)
    parking.refresh()  # heartbeat due
    assert _history_rows(engine) == rows + 2
    with engine.connect() as connection:
        (pk,) = connection.execute(select(parking_occupancy.c.place_pk).distinct()).scalars()
        buckets = store.occupancy_buckets(connection, pk, 3600, None, None)
    assert buckets
    assert buckets[-1]["occupancy"] == pytest.approx(1.0)
    assert parking.history("p", bucket_s=3600, start=None, end=None) == buckets


def _garage(engine: Engine, parking: ParkingService, capacity: int) -> None:
    """Car park ``g`` counted by the sensor ``garage``."""
    create_sensor(
        engine, {"id": "garage", "name": "garage", "lon": 5.11, "lat": 52.09},
        [("free_spaces", "{spaces}")],
    )  # fmt: skip
    parking.create(
        NewPlace(kind="car_park", name="Garage", id="g", capacity=capacity,
                 location=[5.11, 52.09], counter="garage")
    )  # fmt: skip


def test_a_car_park_counter_is_clamped_flagged_and_goes_silent(engine: Engine) -> None:
    parking, writer, _bus, clock = _service(engine)
    _garage(engine, parking, capacity=100)
    _write(writer, T0, {"garage": 130})
    state = parking.get("g")
    assert (state.occupancy.free, state.occupancy.occupied) == (100, 0)
    assert "above_capacity" in state.occupancy.flags
    _write(writer, T0 + timedelta(minutes=5), {"garage": 25})
    clock.now = T0 + timedelta(minutes=6)
    assert parking.get("g").occupancy.rate == pytest.approx(0.75)
    clock.now = T0 + timedelta(minutes=40)
    silent = parking.get("g").occupancy
    assert silent.rate is None
    assert "silent_counter" in silent.flags


def test_places_from_geojson_in_rd_new_all_or_nothing(engine: Engine) -> None:
    parking, _writer, bus, _clock = _service(engine)
    document = json.loads((ROOT / "assets" / "parking_zones.geojson").read_text())
    ids = parking.import_geojson(document, crs=None)
    assert len(ids) == len(document["features"])
    assert len(bus.parking()) == len(ids)
    first = parking.get(ids[0])
    assert first.place["source"] == "geojson"
    assert first.place["capacity"] is not None
    west, south, east, north = (first.place[k] for k in ("west", "south", "east", "north"))
    assert 3.3 < west < east < 7.3
    assert 50.7 < south < north < 53.6
    assert east - west < 0.01  # a car park, not a province: RD metres became degrees
    with pytest.raises(ConflictError):
        parking.import_geojson(document, crs=None)
    broken = json.loads(json.dumps(document))
    broken["features"][1]["properties"] = {"name": "no capacity"}
    for feature in broken["features"]:
        feature["id"] = f"new-{feature['id']}"
    with pytest.raises(InputError, match="feature 2: no capacity"):
        parking.import_geojson(broken, crs=None)
    assert len(parking.places(kind="zone")) == len(ids)  # none of the broken ones


@pytest.mark.parametrize(
    ("place", "message"),
    [
        (NewPlace(kind="garage", name="x", area=SQUARE), "kind"),
        (NewPlace(kind="zone", name=" ", area=SQUARE), "name"),
        (NewPlace(kind="zone", name="x"), "area"),
        (NewPlace(kind="zone", name="x", area=SQUARE, capacity=-1), "capacity"),
        (NewPlace(kind="zone", name="x", area=[[0, 0], [1, 1], [1, 0], [0, 1]]), "crosses"),
        (NewPlace(kind="zone", name="x", area=[[math.nan, 0], [1, 1], [1, 0]]), "finite"),
        (NewPlace(kind="zone", name="x", area=[[0, 0], [1, 0], [0, 0]]), "3 distinct"),
        (NewPlace(kind="zone", name="x", area=[[0, 0]] * 6000), "at most"),
        (NewPlace(kind="car_park", name="x", location=[200, 52]), "longitudes"),
        (NewPlace(kind="car_park", name="x", location=[5e7, 5e7], crs="EPSG:28992"), "EPSG"),
    ],
)
def test_unusable_places_are_refused(engine: Engine, place: NewPlace, message: str) -> None:
    parking, *_ = _service(engine)
    with pytest.raises(InputError, match=message):
        parking.create(place)


def test_delete_publishes_the_removal(engine: Engine) -> None:
    parking, _writer, bus, _clock = _service(engine)
    parking.create(NewPlace(kind="zone", name="P", id="p", area=SQUARE))
    parking.delete("p")
    assert bus.parking()[-1].removed
    assert bus.parking()[-1].key == "parking:p"
    with pytest.raises(NotFoundError):
        parking.get("p")
    with pytest.raises(NotFoundError):
        parking.delete("p")


def _rate(time: datetime) -> float:
    """A lot that fills during the day (local time about UTC+1)."""
    hour = time.hour + time.minute / 60
    return 0.15 + 0.7 * max(0.0, math.sin(math.pi * (hour - 7) / 12)) if 7 <= hour < 19 else 0.15


def _daily_history(engine: Engine, place_id: str, days: int, end: datetime) -> None:
    """15-minute occupancy history rows of a place of 200 spaces over ``days`` before ``end``."""
    with engine.connect() as connection:
        place = store.get_place(connection, place_id)
    assert place is not None
    rows = []
    for step in range(days * 96):
        time = end - timedelta(minutes=15 * (days * 96 - step))
        occupied = round(200 * _rate(time))
        rows.append(
            {"place_pk": place["pk"], "time": time, "capacity": 200.0,
             "occupied": float(occupied), "free": float(200 - occupied), "unknown": 0.0}
        )  # fmt: skip
    with engine.begin() as connection:
        store.add_occupancy(connection, rows)


def test_training_gives_forecasts_from_the_history_and_a_profile(engine: Engine) -> None:
    parking, writer, _bus, clock = _service(engine)
    _garage(engine, parking, capacity=200)
    clock.now = datetime(2026, 3, 24, 8, 0, tzinfo=UTC)  # 09:00 in Amsterdam: filling up
    # Two weeks of counts backfilled at once: a car park learns from its counter's readings.
    counts = [
        {"sensor": "garage", "time": (clock.now - timedelta(minutes=10 * k)).isoformat(),
         "value": round(200 * (1 - _rate(clock.now - timedelta(minutes=10 * k))))}
        for k in range(14 * 144, 1, -1)
    ]  # fmt: skip
    assert writer.write(counts, now=clock.now).accepted == len(counts)
    assert parking.train() == 1
    assert parking.trained_at == clock.now
    _write(writer, clock.now - timedelta(minutes=1), {"garage": 150})
    forecasts = parking.get("g").forecasts
    assert [f.horizon_min for f in forecasts] == [15, 30, 60]
    assert {f.method for f in forecasts} <= {"model", "profile_delta"}
    assert all(f.low <= f.free <= f.high for f in forecasts)
    assert abs(forecasts[0].free - 150) < 25  # from the newest count, not the usual 100
    assert forecasts[-1].free < forecasts[0].free  # the morning fills the car park
    profile = parking.profile("g")
    assert profile["samples"] > 1000
    assert profile["peaks"]
    assert all(p["time"] >= "11:00" for p in profile["peaks"][:1])  # the day's peak, not 3 a.m.


def test_retention_deletes_history_past_the_aggregates_window(engine: Engine) -> None:
    parking, *_ = _service(engine)
    parking.create(NewPlace(kind="zone", name="P", id="p", area=SQUARE))
    end = datetime(2026, 3, 24, tzinfo=UTC)
    _daily_history(engine, "p", 2, end)
    before = _history_rows(engine)
    result = apply_retention(engine, raw=None, aggregates=timedelta(days=1), now=end)
    # the first of the two days, and the row written at creation (at T0, weeks earlier)
    assert result.parking_deleted == 96 + 1
    assert _history_rows(engine) == before - 97


def _feature(geometry: Any, properties: Any, ident: Any = "z") -> dict[str, Any]:
    return {"type": "Feature", "id": ident, "geometry": geometry, "properties": properties}


POLYGON = {"type": "Polygon", "coordinates": [[*SQUARE, SQUARE[0]]]}


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        (_feature(POLYGON, {"capacity": 10**400}), "capacity must be a whole number"),
        (_feature(POLYGON, {"capacity": 1e308 * 10}), "capacity must be a whole number"),
        (_feature(POLYGON, {"capacity": 2.5}), "capacity must be a whole number"),
        (_feature(POLYGON, {"capacity": True}), "capacity must be a whole number"),
        (_feature({"type": "MultiPolygon", "coordinates": [[[1, 2, 3]]]}, {"capacity": 1}),
         "Polygon or MultiPolygon"),
        (_feature({"type": "Polygon", "coordinates": [["x"]]}, {"capacity": 1}), "area"),
        (_feature({"type": "Point", "coordinates": [5.1, 52.1]}, {"capacity": 1}), "Polygons"),
        (_feature(POLYGON, ["capacity", 1]), "properties"),
        (_feature(POLYGON, {"capacity": 1, "name": {"a": 1}}), "name"),
        (_feature(POLYGON, {"capacity": 1}, ident="zone A"), "place id"),
        (_feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
                  {"capacity": 1}), "crosses itself"),
    ],
)  # fmt: skip
def test_hostile_geojson_zones_are_refused_with_the_feature_named(
    engine: Engine, feature: dict[str, Any], message: str
) -> None:
    parking, *_ = _service(engine)
    good = _feature(POLYGON, {"capacity": 5}, ident="good")
    document = {"type": "FeatureCollection", "crs": {"properties": "EPSG:28992"},
                "features": [good, feature]}  # fmt: skip
    with pytest.raises(InputError, match=f"feature 2: .*{message}"):
        parking.import_geojson(document, crs=None)
    assert parking.places() == []


def test_a_listing_reuses_fresh_states_and_sees_every_new_reading(engine: Engine) -> None:
    parking, writer, _bus, clock = _service(engine)
    bays = _bays(engine, 2)
    parking.create(NewPlace(kind="zone", name="P", id="p", area=SQUARE))
    parking.refresh()

    def listed_with_queries() -> tuple[PlaceState, int]:
        statements: list[str] = []

        def record(*args: Any) -> None:
            if args[2].lstrip().upper().startswith("SELECT"):
                statements.append(args[2])

        event.listen(engine, "before_cursor_execute", record)
        try:
            (listed,) = parking.places()
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return listed, len(statements)

    listed, queries = listed_with_queries()
    assert listed.occupancy.unknown == 2
    assert queries == 1  # the places themselves; their states were fresh
    _write(writer, clock.now, {bays[0]: 1})
    listed, queries = listed_with_queries()
    assert listed.occupancy.occupied == 1  # the reading's own computation, not an old one
    assert queries == 1
    clock.now += timedelta(minutes=3)  # older than two refresh intervals: computed again
    listed, queries = listed_with_queries()
    assert queries > 1
    assert (listed.occupancy.occupied, listed.occupancy.unknown) == (1, 1)
