"""The sensor register: its fields on registration and change, the personal-data rule, and the
register as JSON, CSV and GeoJSON on SQLite and PostgreSQL, readers seeing every sensor and
anonymous callers the public ones only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.arserver.support import auth

CAMERA = {
    "id": "cam-dam-1",
    "name": "Crowd counter, Dam",
    "kind": "people_count",
    "unit": "{count}",
    "location": [121380.0, 487380.0, 2.0],
    "crs": "EPSG:7415",
    "owner": "Gemeente Amsterdam",
    "contact": "sensoren@amsterdam.nl",
    "kvk": "34366966",
    "sensor_type": "camera",
    "purpose": '=HYPERLINK("http://evil") crowd management',
    "themes": ["safety", "mobility"],
    "personal_data": True,
    "privacy_statement": "https://www.amsterdam.nl/privacy/crowd",
    "legal_ground": "public_task",
    "placed_at": "2026-03-01T00:00:00Z",
    "project": "Drukte op de Dam",
    "public": True,
}
BIKE = {
    "id": "bike-air-3",
    "name": "Air quality on a bike",
    "kind": "pm25",
    "unit": "ug/m3",
    "owner": "RIVM Samen Meten",
    "area": {
        "type": "Polygon",
        "coordinates": [[[120000, 485000], [123000, 485000], [123000, 488000],
                         [120000, 488000], [120000, 485000]]],
    },
    "crs": "EPSG:28992",
    "removed_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
}  # fmt: skip


def register(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post("/api/v1/sensors", json=body, headers=auth(client, "gis"))


def test_a_sensor_is_registered_with_every_register_field(client: TestClient) -> None:
    created = register(client, CAMERA)
    assert created.status_code == 201, created.text
    sensor = created.json()
    for field in ("owner", "contact", "kvk", "sensor_type", "themes", "privacy_statement",
                  "legal_ground", "project"):  # fmt: skip
        assert sensor[field] == CAMERA[field], field
    assert sensor["personal_data"] is True
    assert sensor["public"] is True
    lon, lat, _ = sensor["location"]
    assert 4.89 < lon < 4.90
    assert 52.37 < lat < 52.38


def test_register_fields_change_and_keep_the_personal_data_rule(client: TestClient) -> None:
    assert register(client, CAMERA).status_code == 201
    gis = auth(client, "gis")
    cleared = client.patch("/api/v1/sensors/cam-dam-1", json={"legal_ground": None}, headers=gis)
    assert cleared.status_code == 422
    assert "legal_ground" in cleared.text
    removal = {"removed_at": "2027-01-01T00:00:00Z", "personal_data": False, "legal_ground": None}
    changed = client.patch("/api/v1/sensors/cam-dam-1", json=removal, headers=gis)
    assert changed.status_code == 200, changed.text
    read = client.get("/api/v1/sensors/cam-dam-1", headers=auth(client, "viewer")).json()
    assert read["removed_at"].startswith("2027-01-01")
    assert read["legal_ground"] is None
    assert read["personal_data"] is False
    assert read["owner"] == CAMERA["owner"]
    viewer = client.patch("/api/v1/sensors/cam-dam-1", json={"project": "x"},
                          headers=auth(client, "viewer"))  # fmt: skip
    assert viewer.status_code == 403
    missing = client.patch("/api/v1/sensors/no-such", json={"project": "x"}, headers=gis)
    assert missing.status_code == 404
    assert (
        client.patch("/api/v1/sensors/cam-dam-1", json={"name": None}, headers=gis).status_code
        == 422
    )


def test_the_register_lists_every_sensor_to_readers_and_public_ones_to_everyone(
    client: TestClient,
) -> None:
    assert register(client, CAMERA).status_code == 201
    assert register(client, BIKE).status_code == 201
    everything = client.get("/api/v1/register", headers=auth(client, "viewer")).json()["sensors"]
    assert [s["id"] for s in everything] == ["bike-air-3", "cam-dam-1"]
    bike, camera = everything
    assert bike["status"] == "removed"
    assert bike["location"] is None
    assert bike["area"]["type"] == "Polygon"
    west = min(p[0] for p in bike["area"]["coordinates"][0])
    assert 4.85 < west < 4.88  # RD New converted to WGS 84
    assert camera["status"] == "active"
    assert camera["measures"] == [{"kind": "people_count", "unit": "{count}"}]
    anonymous = client.get("/api/v1/register").json()["sensors"]
    assert [s["id"] for s in anonymous] == ["cam-dam-1"]
    assert client.get("/api/v1/register", headers=auth(client, "ingest")).status_code == 403


def test_the_register_exports_as_csv_for_spreadsheets_and_geojson_for_maps(
    client: TestClient,
) -> None:
    assert register(client, CAMERA).status_code == 201
    assert register(client, BIKE).status_code == 201
    viewer = auth(client, "viewer")
    exported = client.get("/api/v1/register?format=csv", headers=viewer)
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.text.startswith("\ufeffid,name,owner,contact,kvk,sensor_type,status,")
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    camera = next(r for r in rows if r["id"] == "cam-dam-1")
    assert camera["purpose"].startswith("'=HYPERLINK")  # no formula in a spreadsheet
    assert camera["themes"] == "safety; mobility"
    assert camera["personal_data"] == "yes"
    assert camera["measures"] == "people_count [{count}]"
    assert 52.37 < float(camera["latitude"]) < 52.38
    mapped = client.get("/api/v1/register?format=geojson", headers=viewer)
    assert mapped.headers["content-type"].startswith("application/geo+json")
    features = {f["id"]: f for f in mapped.json()["features"]}
    assert features["cam-dam-1"]["geometry"]["type"] == "Point"
    assert features["bike-air-3"]["geometry"]["type"] == "Polygon"
    assert features["cam-dam-1"]["properties"]["legal_ground"] == "public_task"
