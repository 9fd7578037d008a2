"""Sensor registry and HTTP ingest on SQLite and PostgreSQL: per-item verdicts, idempotency,
history newest first, counts by cause."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.arserver.support import auth

AIR = {
    "id": "air-schiphol-1",
    "name": "Air quality, Schiphol Plaza",
    "datastreams": [{"kind": "no2", "unit": "ug/m3"}, {"kind": "pm25", "unit": "ug/m3"}],
    "location": [4.7610, 52.3095, 43.5],
    "device": {"dev_eui": "0004a30b001c0530", "fields": {"no2_ugm3": "no2", "pm25": "pm25"}},
    "owner": "Gemeente Haarlemmermeer",
    "purpose": "air quality monitoring",
}
BAY = {
    "id": "bay-17",
    "name": "Parking bay 17",
    "kind": "parking_bay",
    "unit": "1",
    "location": [4.753, 52.3165],
}


def register(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post("/api/v1/sensors", json=body, headers=auth(client, "gis"))


def test_sensors_register_with_one_or_several_datastreams_and_a_device(client: TestClient) -> None:
    created = register(client, AIR)
    assert created.status_code == 201, created.text
    assert created.json()["device"]["dev_eui"] == "0004A30B001C0530"
    assert register(client, BAY).status_code == 201
    read = client.get("/api/v1/sensors/air-schiphol-1", headers=auth(client, "viewer")).json()
    assert [d["kind"] for d in read["datastreams"]] == ["no2", "pm25"]
    assert read["location"] == [4.761, 52.3095, 43.5]
    assert register(client, AIR).status_code == 409


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "no2"},  # kind and datastreams together
        {"datastreams": None},  # neither
        {"location": [4.7, 95.0]},
        {"device": {"dev_eui": "0004A30B001C0530", "fields": {"x": "humidity"}}},
        {"id": "has spaces"},
    ],
)
def test_bad_sensor_definitions_are_refused(client: TestClient, change: dict[str, Any]) -> None:
    assert register(client, {**AIR, **change}).status_code == 422


def test_only_admin_and_gis_register_sensors(client: TestClient) -> None:
    assert client.post("/api/v1/sensors", json=BAY).status_code == 401
    for role in ("viewer", "ingest"):
        assert (
            client.post("/api/v1/sensors", json=BAY, headers=auth(client, role)).status_code == 403
        )


def test_a_batch_gets_a_verdict_per_item_and_retries_are_duplicates(client: TestClient) -> None:
    register(client, AIR)
    register(client, BAY)
    now = datetime.now(UTC).replace(microsecond=0)
    t = [(now - timedelta(minutes=m)).isoformat() for m in range(3)]
    items = [
        {"sensor": "air-schiphol-1", "kind": "no2", "time": t[0], "value": 38.5},
        {"sensor": "air-schiphol-1", "kind": "pm25", "time": t[0], "value": 12.0, "id": "uplink-7"},
        {"sensor": "bay-17", "time": t[1], "value": 1, "position": [4.753, 52.3165]},
        {"sensor": "nobody", "time": t[0], "value": 1.0},
        {"sensor": "air-schiphol-1", "time": t[0], "value": 1.0},
        {"sensor": "air-schiphol-1", "kind": "o3", "time": t[0], "value": 1.0},
        {"sensor": "air-schiphol-1", "kind": "no2", "time": t[1], "value": float("nan")},
        {"sensor": "air-schiphol-1", "kind": "no2", "time": t[1], "value": float("inf")},
        {"sensor": "air-schiphol-1", "kind": "no2", "time": t[1], "value": -5.0},
        {
            "sensor": "air-schiphol-1",
            "kind": "no2",
            "time": (now + timedelta(minutes=6)).isoformat(),
            "value": 1.0,
        },
        {"sensor": "air-schiphol-1", "kind": "no2", "time": "2026-05-01T12:00:00", "value": 1.0},
        {"sensor": "air-schiphol-1", "kind": "no2", "time": t[2], "value": "38"},
        {"sensor": "bay-17", "time": t[2], "value": 0, "position": [200, 52]},
        "not an object",
    ]
    ingest = {**auth(client, "ingest"), "Content-Type": "application/json"}
    # NaN and Infinity as Python's json writes them (devices do send these literals)
    raw = json.dumps({"observations": items})
    reply = client.post("/api/v1/observations", content=raw, headers=ingest).json()
    assert (reply["accepted"], reply["duplicate"], reply["rejected"]) == (3, 0, 11)
    causes = {r["index"]: r["cause"] for r in reply["rejections"]}
    assert causes == {
        3: "unknown_sensor", 4: "ambiguous_kind", 5: "unknown_kind", 6: "not_finite",
        7: "not_finite", 8: "out_of_range", 9: "future_time", 10: "bad_time",
        11: "malformed", 12: "malformed", 13: "malformed",
    }  # fmt: skip
    again = client.post(
        "/api/v1/observations", json={"observations": items[:3]}, headers=ingest
    ).json()
    assert (again["accepted"], again["duplicate"], again["rejected"]) == (0, 3, 0)
    stats = client.get("/api/v1/ingest/stats", headers=auth(client, "viewer")).json()["counts"]
    assert stats["accepted"] == 3
    assert stats["duplicate"] == 3
    assert stats["not_finite"] == 2
    assert stats["malformed"] == 3


def test_history_is_newest_first_and_filtered(client: TestClient) -> None:
    register(client, AIR)
    base = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    items = [
        {
            "sensor": "air-schiphol-1",
            "kind": "no2",
            "time": (base + timedelta(minutes=m)).isoformat(),
            "value": 20.0 + m,
        }
        for m in range(10)
    ] + [{"sensor": "air-schiphol-1", "kind": "pm25", "time": base.isoformat(), "value": 9.0}]
    client.post(
        "/api/v1/observations", json={"observations": items}, headers=auth(client, "ingest")
    )
    viewer = auth(client, "viewer")
    no2 = client.get(
        "/api/v1/sensors/air-schiphol-1/observations?kind=no2&limit=3", headers=viewer
    ).json()
    assert [o["value"] for o in no2["observations"]] == [29.0, 28.0, 27.0]
    assert no2["observations"][0]["time"] == "2026-11-01T12:09:00+00:00"
    window = client.get(
        "/api/v1/sensors/air-schiphol-1/observations",
        params={"kind": "no2", "from": "2026-11-01T12:02:00Z", "to": "2026-11-01T12:05:00Z"},
        headers=viewer,
    ).json()["observations"]
    assert [o["value"] for o in window] == [24.0, 23.0, 22.0]
    naive = client.get(
        "/api/v1/sensors/air-schiphol-1/observations?from=2026-11-01T12:00:00", headers=viewer
    )
    assert naive.status_code == 422
    assert client.get("/api/v1/sensors/nobody/observations", headers=viewer).status_code == 404


def test_only_ingesting_roles_write_observations(client: TestClient) -> None:
    register(client, BAY)
    body = {
        "observations": [{"sensor": "bay-17", "time": datetime.now(UTC).isoformat(), "value": 1}]
    }
    assert client.post("/api/v1/observations", json=body).status_code == 401
    assert (
        client.post("/api/v1/observations", json=body, headers=auth(client, "viewer")).status_code
        == 403
    )
    assert (
        client.post("/api/v1/observations", json=body, headers=auth(client, "ingest")).status_code
        == 200
    )


def test_time_buckets_give_mean_min_max_and_count(client: TestClient) -> None:
    register(client, BAY)
    base = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    values = [1, 1, 0, 1, 0, 0]  # occupied, occupied, free, ... every 20 minutes
    items = [
        {"sensor": "bay-17", "time": (base + timedelta(minutes=20 * k)).isoformat(), "value": v}
        for k, v in enumerate(values)
    ]
    client.post(
        "/api/v1/observations", json={"observations": items}, headers=auth(client, "ingest")
    )
    viewer = auth(client, "viewer")
    hourly = client.get(
        "/api/v1/sensors/bay-17/observations/buckets?bucket=1h", headers=viewer
    ).json()
    assert hourly["buckets"] == [
        {"start": "2026-11-02T08:00:00+00:00", "mean": 2 / 3, "min": 0.0, "max": 1.0, "count": 3},
        {"start": "2026-11-02T09:00:00+00:00", "mean": 1 / 3, "min": 0.0, "max": 1.0, "count": 3},
    ]
    daily = client.get(
        "/api/v1/sensors/bay-17/observations/buckets?bucket=1d", headers=viewer
    ).json()
    assert [(b["start"], b["count"]) for b in daily["buckets"]] == [
        ("2026-11-02T00:00:00+00:00", 6)
    ]
    assert (
        client.get(
            "/api/v1/sensors/bay-17/observations/buckets?bucket=7m", headers=viewer
        ).status_code
        == 422
    )


def test_latest_values_in_a_bbox_or_a_circle(client: TestClient) -> None:
    register(client, AIR)
    register(client, BAY)
    now = datetime.now(UTC).replace(microsecond=0)
    items = [
        {
            "sensor": "air-schiphol-1",
            "kind": "no2",
            "time": (now - timedelta(minutes=2)).isoformat(),
            "value": 30.0,
        },
        {
            "sensor": "air-schiphol-1",
            "kind": "no2",
            "time": (now - timedelta(minutes=1)).isoformat(),
            "value": 31.0,
        },
        {"sensor": "bay-17", "time": now.isoformat(), "value": 1},
    ]
    client.post(
        "/api/v1/observations", json={"observations": items}, headers=auth(client, "ingest")
    )
    viewer = auth(client, "viewer")
    box = client.get(
        "/api/v1/observations/latest?bbox=4.70,52.30,4.80,52.32", headers=viewer
    ).json()["latest"]
    assert [(i["sensor"], i["kind"], i["value"]) for i in box] == [
        ("air-schiphol-1", "no2", 31.0),
        ("bay-17", "parking_bay", 1.0),
    ]
    # The bay stands about 950 m from the air sensor.
    near = client.get(
        "/api/v1/observations/latest?center=4.7610,52.3095&radius_m=200", headers=viewer
    ).json()
    assert [i["sensor"] for i in near["latest"]] == ["air-schiphol-1"]
    wide = client.get(
        "/api/v1/observations/latest?center=4.7610,52.3095&radius_m=2000&kinds=parking_bay",
        headers=viewer,
    )
    assert [i["sensor"] for i in wide.json()["latest"]] == ["bay-17"]
    assert client.get("/api/v1/observations/latest", headers=viewer).status_code == 422
    assert client.get("/api/v1/observations/latest?bbox=1,2,3", headers=viewer).status_code == 422


def test_the_same_reading_twice_in_one_batch_is_stored_once(client: TestClient) -> None:
    register(client, BAY)
    item = {"sensor": "bay-17", "time": datetime.now(UTC).isoformat(), "value": 1}
    reply = client.post(
        "/api/v1/observations", json={"observations": [item, item]}, headers=auth(client, "ingest")
    )
    assert (reply.json()["accepted"], reply.json()["duplicate"]) == (1, 1)


def test_exports_as_csv_and_geojson_and_a_mobile_sensor_s_trajectory(client: TestClient) -> None:
    ball = {"id": "ball-1", "name": "Sensor ball in the sewer", "kind": "water_level", "unit": "m"}
    assert client.post("/api/v1/sensors", json=ball, headers=auth(client, "gis")).status_code == 201
    base = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
    path = [[4.7530, 52.3160], [4.7535, 52.3161], [4.7540, 52.3162]]
    items = [
        {
            "sensor": "ball-1",
            "time": (base + timedelta(minutes=k)).isoformat(),
            "value": -4.0 + 0.1 * k,
            "position": p,
        }
        for k, p in enumerate(path)
    ]
    client.post(
        "/api/v1/observations", json={"observations": items}, headers=auth(client, "ingest")
    )
    viewer = auth(client, "viewer")
    csv_text = client.get("/api/v1/sensors/ball-1/observations?format=csv", headers=viewer)
    assert csv_text.headers["content-type"].startswith("text/csv")
    lines = csv_text.text.splitlines()
    assert lines[0] == "time,kind,value,lon,lat,h"
    assert lines[1] == "2026-11-04T09:02:00+00:00,water_level,-3.8,4.754,52.3162,"
    geojson = client.get("/api/v1/sensors/ball-1/observations?format=geojson", headers=viewer)
    assert geojson.headers["content-type"] == "application/geo+json"
    assert [f["geometry"]["coordinates"] for f in geojson.json()["features"]] == path[::-1]
    track = client.get("/api/v1/sensors/ball-1/trajectory", headers=viewer).json()
    assert track["geometry"] == {"type": "LineString", "coordinates": path}
    assert track["properties"]["values"] == [-4.0, -3.9, -3.8]
