"""The sensor register's write path: positions in any CRS stored in WGS 84, conflicts, and
times that must say their zone."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from arserver.errors import ConflictError, InputError
from arserver.services.sensors import SensorService
from tests.arserver.support import auth

AMERSFOORT_RD_NAP = [155_000.0, 463_000.0, 0.0]


def test_a_position_in_rd_nap_is_stored_in_wgs84_with_ellipsoidal_height(engine: Engine) -> None:
    stored = SensorService(engine).register(
        {"id": "no2-1", "name": "Air"}, [("no2", "ug/m3")], AMERSFOORT_RD_NAP, "EPSG:7415"
    )
    assert stored["lon"] == pytest.approx(5.387203650, abs=1e-8)
    assert stored["lat"] == pytest.approx(52.155172887, abs=1e-8)
    assert stored["h"] == pytest.approx(43.2772, abs=1e-3)  # NAP 0 m is 43.28 m above GRS80
    assert stored["datastreams"] == [{"kind": "no2", "unit": "ug/m3"}]


def test_a_second_sensor_with_the_same_id_is_a_conflict(engine: Engine) -> None:
    sensors = SensorService(engine)
    sensors.register({"id": "s1", "name": "One"}, [("no2", "ug/m3")], [5.0, 52.0], None)
    with pytest.raises(ConflictError, match="exists already"):
        sensors.register({"id": "s1", "name": "Two"}, [("pm10", "ug/m3")], None, None)


def test_a_position_outside_the_rd_grid_is_an_input_error(engine: Engine) -> None:
    with pytest.raises(InputError, match="EPSG:7415"):
        SensorService(engine).register(
            {"id": "far", "name": "Far"}, [("no2", "ug/m3")], [900_000.0, 9e6, 0.0], "EPSG:7415"
        )


def test_register_times_without_a_zone_are_refused(client: TestClient) -> None:
    sensor = {
        "id": "bay-1", "name": "Bay", "kind": "parking_bay", "unit": "1",
        "location": [4.76, 52.31], "placed_at": "2026-05-01T12:00:00",
    }  # fmt: skip
    response = client.post("/api/v1/sensors", json=sensor, headers=auth(client, "gis"))
    assert response.status_code == 422
    assert "time zone" in response.text
    zoned = client.post(
        "/api/v1/sensors",
        json={**sensor, "placed_at": "2026-05-01T14:00:00+02:00"},
        headers=auth(client, "gis"),
    )
    assert zoned.status_code == 201, zoned.text
