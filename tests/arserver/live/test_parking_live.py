"""Parking on the live overlay of a running server: a zone's occupancy is in the snapshot, and a
bay reading posted over HTTP comes out as the zone's new occupancy with its forecast."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from arserver.config import Settings
from arserver.services.parking import NewPlace, ParkingService
from arserver.store.database import open_database
from tests.arserver.support import Live, receive

#: Above the database: SQLite is enough.
BACKENDS = ("sqlite",)
ZONE = [[4.9000, 52.3700], [4.9010, 52.3700], [4.9010, 52.3706], [4.9000, 52.3706]]


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    engine = open_database(settings)
    try:
        ParkingService(engine).create(
            NewPlace(kind="zone", name="Plein", id="plein", capacity=2, area=ZONE)
        )
    finally:
        engine.dispose()
    running = Live(settings)
    yield running
    running.close()


def test_a_bay_reading_changes_the_zone_on_the_live_parking_layer(live: Live) -> None:
    gis = {"Authorization": f"Bearer {live.gis}"}
    for bay, lon in (("bay-a", 4.9003), ("bay-b", 4.9006)):
        body = {"id": bay, "name": bay, "kind": "parking_bay", "unit": "1",
                "location": [lon, 52.3703]}  # fmt: skip
        reply = live.http.post("/api/v1/sensors", json=body, headers=gis)
        assert reply.status_code == 201, reply.text
    with live.connect() as ws:
        receive(ws, "welcome")
        ws.send(
            json.dumps(
                {"type": "subscribe", "id": "p", "layers": ["parking"], "max_rate_hz": None,
                 "area": {"center": [4.9005, 52.3703], "radius_m": 200}}
            )
        )  # fmt: skip
        [item] = receive(ws, "snapshot")["items"]
        assert item["key"] == "parking:plein"
        assert (item["data"]["unknown"], item["data"]["value"]) == (2, None)
        live.observe(("bay-a", 1.0), ("bay-b", 0.0))
        items: dict[str, Any] = {}
        while "parking:plein" not in items:  # the bays themselves are on the layer too
            items |= {i["key"]: i for i in receive(ws, "update")["items"]}
        assert items["sensor:bay-a:parking_bay"]["data"]["value"] == 1.0
        update = items["parking:plein"]
        assert update["key"] == "parking:plein"
        assert update["kind"] == "occupancy"
        data = update["data"]
        assert (data["occupied"], data["free"], data["unknown"], data["value"]) == (1, 1, 0, 0.5)
        assert [f["horizon_min"] for f in data["forecast"]] == [15, 30, 60]
        assert data["forecast"][0]["method"] == "last_value"  # no history yet, and it says so
        assert data["forecast_30m"] == 0.5
