"""Threshold rules with hysteresis and minimum durations; alerts open -> acknowledged ->
resolved; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.arserver.support import auth

T0 = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)


def setup(client: TestClient, rule: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    gis = auth(client, "gis")
    for sensor in ("air-1", "air-2"):
        body = {
            "id": sensor,
            "name": sensor,
            "kind": "no2",
            "unit": "ug/m3",
            "location": [4.76, 52.31],
        }
        assert client.post("/api/v1/sensors", json=body, headers=gis).status_code == 201
    created = client.post(
        "/api/v1/rules", json={"name": "NO2 norm", "kind": "no2", **rule}, headers=gis
    )
    assert created.status_code == 201, created.text
    return gis, auth(client, "ingest")


def send(
    client: TestClient,
    ingest: dict[str, str],
    series: list[tuple[int, float]],
    sensor: str = "air-1",
) -> Any:
    items = [
        {"sensor": sensor, "time": (T0 + timedelta(minutes=m)).isoformat(), "value": v}
        for m, v in series
    ]
    return client.post("/api/v1/observations", json={"observations": items}, headers=ingest).json()


def alerts(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    return list(client.get("/api/v1/alerts", headers=headers).json()["alerts"])


def test_raw_rule_opens_after_its_minimum_duration_and_resolves_with_hysteresis(
    client: TestClient,
) -> None:
    gis, ingest = setup(
        client, {"threshold": 40, "reset": 35, "open_after_s": 600, "resolve_after_s": 1200}
    )
    send(client, ingest, [(0, 30), (5, 45), (10, 46)])
    assert alerts(client, gis) == []  # beyond 40 for only 5 minutes
    send(client, ingest, [(15, 47)])
    (opened,) = alerts(client, gis)
    assert (opened["status"], opened["value"], opened["opened_at"]) == (
        "open",
        47.0,
        "2026-11-03T08:15:00+00:00",
    )
    # 38 is inside the band; 34 and 33 are back, but 36 interrupts; back again from minute 40.
    send(client, ingest, [(20, 38), (25, 34), (30, 33), (35, 36), (40, 30), (45, 30), (50, 30)])
    assert alerts(client, gis)[0]["status"] == "open"
    send(client, ingest, [(60, 30)])
    (resolved,) = alerts(client, gis)
    assert resolved["status"] == "resolved"
    assert resolved["resolved_at"] == "2026-11-03T09:00:00+00:00"


def test_hourly_mean_rule_follows_the_trailing_mean(client: TestClient) -> None:
    gis, ingest = setup(
        client, {"threshold": 40, "reset": 35, "window": "1h", "resolve_after_s": 1800}
    )
    reply = send(client, ingest, [(0, 50), (15, 50), (30, 50), (45, 50)])
    assert [a["status"] for a in alerts(client, gis)] == ["open"]
    assert reply["accepted"] == 4
    # Trailing hourly means: 42.5 (inside the band), 35 (not below 35), 27.5 (back from 09:30),
    # 20, then 20 at 10:00: back for 30 minutes.
    send(client, ingest, [(60, 20), (75, 20), (90, 20), (105, 20)])
    assert alerts(client, gis)[0]["status"] == "open"
    send(client, ingest, [(120, 20)])
    assert alerts(client, gis)[0]["status"] == "resolved"
    assert alerts(client, gis)[0]["resolved_at"] == "2026-11-03T10:00:00+00:00"


def test_acknowledged_alerts_still_resolve_and_roles_are_checked(client: TestClient) -> None:
    gis, ingest = setup(client, {"threshold": 40, "reset": 35})
    send(client, ingest, [(0, 50)])
    (alert,) = alerts(client, gis)
    assert (
        client.post(
            f"/api/v1/alerts/{alert['id']}/acknowledge", headers=auth(client, "viewer")
        ).status_code
        == 403
    )
    acked = client.post(
        f"/api/v1/alerts/{alert['id']}/acknowledge", headers=auth(client, "inspector")
    ).json()
    assert acked["status"] == "acknowledged"
    assert acked["acknowledged_by"] == "inspector token"
    send(client, ingest, [(5, 20)])
    assert alerts(client, gis)[0]["status"] == "resolved"
    again = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", headers=gis).json()
    assert again["status"] == "resolved"
    assert client.post("/api/v1/alerts/nope/acknowledge", headers=gis).status_code == 404
    assert client.get("/api/v1/alerts?status=open", headers=gis).json()["alerts"] == []


def test_late_readings_do_not_move_a_rule_and_sensor_rules_stay_with_their_sensor(
    client: TestClient,
) -> None:
    gis, ingest = setup(client, {"threshold": 40, "reset": 35, "sensor": "air-2"})
    send(client, ingest, [(10, 30)], sensor="air-2")
    send(client, ingest, [(5, 90)], sensor="air-2")  # older than what the rule has seen
    send(client, ingest, [(0, 90)], sensor="air-1")  # another sensor
    assert alerts(client, gis) == []
    send(client, ingest, [(15, 90)], sensor="air-2")
    assert [(a["sensor_id"], a["status"]) for a in alerts(client, gis)] == [("air-2", "open")]


def test_rules_are_checked_and_only_gis_and_admin_add_them(client: TestClient) -> None:
    gis = auth(client, "gis")
    wrong_side = {"name": "x", "kind": "no2", "threshold": 40, "reset": 45}
    assert client.post("/api/v1/rules", json=wrong_side, headers=gis).status_code == 422
    good = {"name": "x", "kind": "no2", "threshold": 40, "reset": 35}
    assert (
        client.post("/api/v1/rules", json=good, headers=auth(client, "viewer")).status_code == 403
    )
    assert client.post("/api/v1/rules", json=good, headers=gis).status_code == 201
    assert [r["window"] for r in client.get("/api/v1/rules", headers=gis).json()["rules"]] == [
        "raw"
    ]
