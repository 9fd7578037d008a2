"""Feed batches (SPDP, DATEX II v3 and v2.3 samples) into car parks, counter sensors and
counter observations, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from arserver.ingest.datex2 import read_datex2
from arserver.ingest.feed_fetch import fetch
from arserver.ingest.parking_feeds import CarParkInfo, CarParkStatus, FeedBatch
from arserver.ingest.parking_sources import FeedSource
from arserver.ingest.spdp import read_spdp
from arserver.services.observations import ObservationWriter
from arserver.services.parking import ParkingService
from arserver.services.parking_feeds import FeedImporter
from arserver.services.sensors import SensorService
from arserver.store.sensors import get_sensor, history

DATA = Path(__file__).resolve().parents[2] / "data" / "parking"
SPDP_INDEX = str(DATA / "spdp" / "index.json")
DATEX2 = DATA / "datex2"
#: A little after the samples' status times (14 March 2025, about 08:15 UTC), so that their
#: counters are fresh for the parking service.
NOW = datetime(2025, 3, 14, 8, 30, tzinfo=UTC)

SPRINGWEG = "spdp:3f1c2a9e-5b7d-4e21-9a63-0c8e7d54b1a2"
VREDENBURG = "spdp:8a0d6b3c-1e4f-4c5a-b7d2-9f3e1a6c8b04"
WESTRAVEN = "spdp:c5e27f41-9d3b-4a86-8e1f-2b7a4d0c9e63"


def _services(engine: Engine) -> tuple[FeedImporter, ParkingService]:
    parking = ParkingService(engine, now=lambda: NOW)
    writer = ObservationWriter(engine, parking=parking)
    return FeedImporter(parking, SensorService(engine), writer), parking


def _counts(engine: Engine, sensor_id: str) -> list[tuple[str, float]]:
    return [
        (str(item["time"]), float(item["value"]))
        for item in history(engine, sensor_id, "free_spaces", None, None, 100)
    ]


def test_spdp_index_becomes_car_parks_with_counters_and_counts_stored_once(
    engine: Engine,
) -> None:
    importer, parking = _services(engine)
    batch = read_spdp(SPDP_INDEX, fetch)

    first = importer.import_batch(batch, "spdp")
    assert (first.created, first.updated, first.failed) == (3, 0, 0)
    assert (first.stored, first.duplicates, first.rejected, first.unknown) == (3, 0, 0, 0)
    assert first.problem_lines == []

    springweg = parking.get(SPRINGWEG)
    assert springweg.place["kind"] == "car_park"
    assert springweg.place["source"] == "spdp"
    assert springweg.place["capacity"] == 525
    assert springweg.place["counter_sensor"] == SPRINGWEG
    assert springweg.place["name"] == "Parkeergarage Springweg"
    # -3 vacant as published, clamped to 0 free and flagged by the parking service
    assert springweg.occupancy.free == 0
    assert "below_zero" in springweg.occupancy.flags
    assert _counts(engine, SPRINGWEG) == [("2025-03-14T08:15:00+00:00", -3.0)]

    vredenburg = parking.get(VREDENBURG)
    assert vredenburg.place["capacity"] == 860  # the specification in force
    assert (vredenburg.occupancy.free, vredenburg.occupancy.occupied) == (312, 548)
    assert vredenburg.occupancy.flags == ()

    westraven = parking.get(WESTRAVEN)
    assert westraven.place["is_open"] is False
    assert "closed" in westraven.occupancy.flags
    assert westraven.place["area"] is not None  # its GeoJSON area, no point in the document

    sensor = get_sensor(engine, SPRINGWEG)
    assert sensor is not None
    assert sensor["datastreams"] == [{"kind": "free_spaces", "unit": "{spaces}"}]
    assert (sensor["lon"], sensor["lat"]) == (springweg.place["lon"], springweg.place["lat"])

    again = importer.import_batch(read_spdp(SPDP_INDEX, fetch), "spdp")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert (again.stored, again.duplicates) == (0, 3)
    assert len(_counts(engine, SPRINGWEG)) == 1
    assert len(parking.places(kind="car_park")) == 3


def test_datex2_v3_table_and_status_import_with_clamped_and_closed_flags(engine: Engine) -> None:
    importer, parking = _services(engine)
    feed = FeedSource(
        "datex2", str(DATEX2 / "v3_table.xml"), str(DATEX2 / "v3_status.xml"), fetch=fetch
    )
    summary = importer.import_batch(feed.read(), "datex2")
    assert (summary.created, summary.stored, summary.unknown) == (3, 3, 0)

    stadhuisplein = parking.get("datex2:NL-AMF-STADHUISPLEIN")
    assert stadhuisplein.place["capacity"] == 580
    assert stadhuisplein.place["source"] == "datex2"
    # 596 cars counted for 580 spaces: -16 free stored, 0 free shown, flagged
    assert _counts(engine, "datex2:NL-AMF-STADHUISPLEIN")[0][1] == -16.0
    assert stadhuisplein.occupancy.free == 0
    assert stadhuisplein.occupancy.occupied == 580
    assert "below_zero" in stadhuisplein.occupancy.flags

    eemplein = parking.get("datex2:NL-AMF-EEMPLEIN")
    assert eemplein.place["is_open"] is False
    assert "closed" in eemplein.occupancy.flags
    assert eemplein.place["area"] is not None

    flintplein = parking.get("datex2:NL-AMF-FLINTPLEIN")
    assert flintplein.occupancy.free == 123
    assert flintplein.place["operator"]

    again = importer.import_batch(feed.read(), "datex2")
    assert (again.created, again.stored, again.duplicates) == (0, 0, 3)


def test_datex2_v2_status_read_alone_takes_capacities_of_stored_car_parks(
    engine: Engine,
) -> None:
    importer, parking = _services(engine)
    table = read_datex2((DATEX2 / "v2_table.xml").read_bytes())
    first = importer.import_batch(table, "datex2")
    assert (first.created, first.stored) == (3, 0)
    assert importer.capacities("datex2")["datex2:NL-UT-PR-PAPENDORP"] == 430
    assert importer.capacities("spdp") == {}

    status = read_datex2(
        (DATEX2 / "v2_status.xml").read_bytes(), capacities=importer.capacities("datex2")
    )
    summary = importer.import_batch(status, "datex2")
    assert (summary.created, summary.stored, summary.no_count, summary.unknown) == (0, 2, 1, 0)
    # only the occupied count was published: 430 - 301 free
    assert _counts(engine, "datex2:NL-UT-PR-PAPENDORP")[0][1] == 129.0
    science_park = parking.get("datex2:NL-UT-PR-SCIENCEPARK")
    assert "below_zero" in science_park.occupancy.flags
    jaarbeurs = parking.get("datex2:NL-UT-JAARBEURS")
    assert jaarbeurs.place["is_open"] is False
    assert "closed" in jaarbeurs.occupancy.flags
    assert jaarbeurs.place["capacity"] == 2800


def test_statuses_that_cannot_be_stored_are_counted_and_named(engine: Engine) -> None:
    importer, parking = _services(engine)
    dynamic = DATA / "spdp" / "dynamic" / "8a0d6b3c-1e4f-4c5a-b7d2-9f3e1a6c8b04.json"
    summary = importer.import_batch(read_spdp(str(dynamic), fetch), "spdp")
    assert (summary.unknown, summary.stored, summary.created) == (1, 0, 0)
    assert any(VREDENBURG in line and "no such car park" in line for line in summary.problems)
    assert "1 of unknown car parks skipped" in summary.line()
    assert parking.places() == []
    assert get_sensor(engine, VREDENBURG) is None

    # counts older than the raw retention window are refused by the write path, and said so
    retention = datetime.now(UTC) - datetime(2025, 6, 1, tzinfo=UTC)
    writer = ObservationWriter(engine, parking=parking, raw_retention=retention)
    strict = FeedImporter(parking, SensorService(engine), writer)
    summary = strict.import_batch(read_spdp(SPDP_INDEX, fetch), "spdp")
    assert (summary.created, summary.stored, summary.rejected) == (3, 0, 3)
    assert all("too_old" in line for line in summary.problems)
    assert _counts(engine, SPRINGWEG) == []


def _info(ident: str, **changes: object) -> CarParkInfo:
    values: dict[str, object] = {
        "id": ident, "name": f"P {ident}", "lon": 5.12, "lat": 52.09, "capacity": 100,
        "area": None, "operator": "Gemeente", "source": "spdp",
    }  # fmt: skip
    values.update(changes)
    return CarParkInfo(**values)  # type: ignore[arg-type]


def _status(ident: str, vacant: int, capacity: int | None = None) -> CarParkStatus:
    return CarParkStatus(
        ident, datetime(2025, 3, 14, 8, 20, tzinfo=UTC), vacant, capacity, True, None
    )


def test_one_bad_facility_never_stops_the_others(engine: Engine) -> None:
    importer, parking = _services(engine)
    importer.sensors.register(
        {"id": "spdp:taken", "name": "air"}, [("no2", "ug/m3")], [5.1, 52.1], None
    )
    crossing = [[5.0, 52.0], [5.1, 52.1], [5.1, 52.0], [5.0, 52.1], [5.0, 52.0]]
    batch = FeedBatch(
        car_parks=[
            _info("spdp:has space"),  # no sensor can have this id
            _info("spdp:taken"),  # a sensor of another kind has it
            _info("spdp:good", area=crossing),  # an area that crosses itself
        ],
        statuses=[
            _status("spdp:has space", 5),
            _status("spdp:taken", 5),
            _status("spdp:good", 130, capacity=120),  # more free than capacity
        ],
        problems=["facility x: static data skipped: not valid JSON"],
    )
    summary = importer.import_batch(batch, "spdp")
    assert (summary.failed, summary.created, summary.stored, summary.unknown) == (2, 1, 1, 2)
    problems = "\n".join(summary.problems)
    assert "facility x" in problems  # the reader's own lines are kept
    assert "spdp:has space: car park refused" in problems
    assert "spdp:taken: car park refused: sensor 'spdp:taken' exists without" in problems
    assert "spdp:good: area left out" in problems

    good = parking.get("spdp:good")
    assert good.place["area"] is None
    assert good.place["capacity"] == 120  # from the status
    assert good.occupancy.free == 120
    assert "above_capacity" in good.occupancy.flags
    assert [p.place["id"] for p in parking.places()] == ["spdp:good"]
