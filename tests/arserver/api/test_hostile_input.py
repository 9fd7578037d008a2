"""Hostile input on SQLite and PostgreSQL: times out of range, text the databases cannot hold
(NUL characters, lone surrogates), numbers too large, unbounded maps. Each is a 422 or a counted
rejection of its item, never a 500, and the other items of a batch are stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.arserver.support import auth

SENSOR = {"id": "s1", "name": "S1", "kind": "no2", "unit": "ug/m3", "location": [4.76, 52.31]}


def post_json(client: TestClient, path: str, body: Any, role: str) -> Any:
    """POST ``body`` as JSON with every non-ASCII character escaped, so that lone surrogates
    arrive as the ``\\ud800`` escapes a hostile client would send."""
    return client.post(
        path,
        content=json.dumps(body).encode("ascii"),
        headers={**auth(client, role), "Content-Type": "application/json"},
    )


def recent(minutes: int = 0) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


def counts(client: TestClient) -> dict[str, int]:
    reply = client.get("/api/v1/ingest/stats", headers=auth(client, "viewer"))
    assert reply.status_code == 200, reply.text
    result: dict[str, int] = reply.json()["counts"]
    return result


@pytest.fixture
def sensor(client: TestClient) -> TestClient:
    """``client`` with sensor ``s1`` (NO2) registered."""
    reply = post_json(client, "/api/v1/sensors", SENSOR, "gis")
    assert reply.status_code == 201, reply.text
    return client


# -- observation items -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "time",
    [
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
        "0001-01-01T00:00:00Z",  # no overflow here, but in every window and bucket after it
        "1899-12-31T23:59:59Z",
    ],
)
def test_a_time_out_of_range_is_a_bad_time_and_the_other_items_are_stored(
    sensor: TestClient, time: str
) -> None:
    items = [
        {"sensor": "s1", "time": time, "value": 1.0},
        {"sensor": "s1", "time": recent(), "value": 2.0},
    ]
    reply = post_json(sensor, "/api/v1/observations", {"observations": items}, "ingest")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["cause"]) for r in body["rejections"]] == [(0, "bad_time")]
    assert counts(sensor)["bad_time"] == 1


@pytest.mark.parametrize(
    ("change", "cause"),
    [
        ({"id": "uplink\x00 7"}, "malformed"),  # PostgreSQL text holds no NUL
        ({"id": "uplink \ud800"}, "malformed"),  # a lone surrogate is no UTF-8
        ({"sensor": "s1\x00"}, "malformed"),
        ({"sensor": "\udfff"}, "malformed"),
        ({"kind": ["no2"]}, "malformed"),  # not a name at all
        ({"kind": "\ud800"}, "unknown_kind"),
        ({"value": 10**400}, "out_of_range"),  # a JSON integer beyond any double
        ({"position": [4.76, 52.31, 10**400]}, "malformed"),
        ({"position": [4.76, 52.31, 1e308]}, "malformed"),  # a height no place on earth has
        ({"position": [10**400, 52.31]}, "malformed"),
    ],
)
def test_hostile_observation_items_are_counted_rejections(
    sensor: TestClient, change: dict[str, Any], cause: str
) -> None:
    hostile = {"sensor": "s1", "time": recent(1), "value": 3.0, **change}
    good = {"sensor": "s1", "time": recent(), "value": 2.0, "id": "fine"}
    reply = post_json(sensor, "/api/v1/observations", {"observations": [hostile, good]}, "ingest")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["accepted"] == 1, body
    assert [(r["index"], r["cause"]) for r in body["rejections"]] == [(0, cause)]
    assert counts(sensor)[cause] == 1
    history = sensor.get("/api/v1/sensors/s1/observations", headers=auth(sensor, "viewer"))
    assert [o["value"] for o in history.json()["observations"]] == [2.0]


def test_a_huge_value_of_a_kind_without_a_physical_range_is_out_of_range(  # sums overflow
    client: TestClient,
) -> None:
    other = {**SENSOR, "id": "counter", "kind": "vehicles", "unit": "1"}
    assert post_json(client, "/api/v1/sensors", other, "gis").status_code == 201
    items = [
        {"sensor": "counter", "time": recent(1), "value": 1e300},
        {"sensor": "counter", "time": recent(), "value": 12},
    ]
    reply = post_json(client, "/api/v1/observations", {"observations": items}, "ingest")
    assert reply.status_code == 200, reply.text
    assert [r["cause"] for r in reply.json()["rejections"]] == ["out_of_range"]
    assert reply.json()["accepted"] == 1


# -- query parameters ------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["observations", "observations/buckets", "trajectory"])
@pytest.mark.parametrize(
    ("name", "value"),
    [("from", "0001-01-01T00:00:00+01:00"), ("to", "9999-12-31T23:59:59-01:00")],
)
def test_from_and_to_out_of_range_are_a_422(
    sensor: TestClient, route: str, name: str, value: str
) -> None:
    reply = sensor.get(
        f"/api/v1/sensors/s1/{route}", params={name: value}, headers=auth(sensor, "viewer")
    )
    assert reply.status_code == 422, reply.text
    assert f"'{name}'" in reply.json()["detail"]
    assert "range" in reply.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/sensors/s1%00",
        "/api/v1/sensors/s1%00/observations",
        "/api/v1/sensors/s1%00/observations/buckets",
        "/api/v1/sensors/s1%00/trajectory",
    ],
)
def test_a_sensor_id_with_a_nul_character_is_not_found(sensor: TestClient, path: str) -> None:
    assert sensor.get(path, headers=auth(sensor, "viewer")).status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/sensors/s1/observations?kind=no2%00",
        "/api/v1/sensors/s1/observations/buckets?kind=%00",
        "/api/v1/observations/latest?bbox=4,52,5,53&kinds=no2,%00",
        "/api/v1/observations/latest?bbox=nan,52,5,53",
        "/api/v1/observations/latest?bbox=4,52,inf,53",
        "/api/v1/observations/latest?center=nan,52&radius_m=10",
    ],
)
def test_query_parameters_that_cannot_be_used_are_a_422(sensor: TestClient, query: str) -> None:
    assert sensor.get(query, headers=auth(sensor, "viewer")).status_code == 422


# -- sensor registrations --------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"name": "Air \ud800"},
        {"name": "Air\x00"},
        {"id": "\ud800"},  # fails the id pattern too: the 422 must not echo it
        {"id": "s2\x00"},
        {"unit": "ug/m3\udc00"},
        {"owner": "\x00"},
        {"purpose": "monitoring \ud83d"},
        {"datastreams": [{"kind": "no2", "unit": "\ud800"}], "kind": None, "unit": None},
        {"device": {"dev_eui": "0004A30B001C0530", "fields": {"\ud800": "no2"}}},
        {"device": {"dev_eui": "0004A30B001C0530", "fields": {"no2\x00": "no2"}}},
        {"\ud800": "an unknown field whose name is no text"},
    ],
)
def test_sensor_text_that_cannot_be_stored_is_a_422(
    client: TestClient, change: dict[str, Any]
) -> None:
    body = {k: v for k, v in {**SENSOR, "id": "s2", **change}.items() if v is not None}
    reply = post_json(client, "/api/v1/sensors", body, "gis")
    assert reply.status_code == 422, reply.text
    assert client.get("/api/v1/sensors/s2", headers=auth(client, "viewer")).status_code == 404


@pytest.mark.parametrize("body", ['"\\ud800"', '["\\ud800"]', '{"id": "\\ud800"}'])
def test_a_lone_surrogate_is_no_500_even_anonymously(client: TestClient, body: str) -> None:
    headers = {"Content-Type": "application/json"}
    anonymous = client.post("/api/v1/sensors", content=body.encode("ascii"), headers=headers)
    assert anonymous.status_code in (401, 422), anonymous.text
    anonymous.json()  # a JSON answer, encoded
    reply = client.post(
        "/api/v1/sensors", content=body.encode("ascii"), headers={**headers, **auth(client)}
    )
    assert reply.status_code == 422, reply.text
    reply.json()


@pytest.mark.parametrize(
    "change",
    [
        {"placed_at": "0001-01-01T00:00:00+01:00"},
        {"removed_at": "9999-12-31T23:59:59-01:00"},
        {"location": [4.76, 52.31, 1e308]},
    ],
)
def test_sensor_times_and_heights_out_of_range_are_a_422(
    client: TestClient, change: dict[str, Any]
) -> None:
    reply = post_json(client, "/api/v1/sensors", {**SENSOR, **change}, "gis")
    assert reply.status_code == 422, reply.text


def device(fields: dict[str, str]) -> dict[str, Any]:
    return {**SENSOR, "device": {"dev_eui": "0004A30B001C0530", "fields": fields}}


def test_device_fields_are_limited_in_number_and_length(client: TestClient) -> None:
    too_many = {f"field_{n}": "no2" for n in range(51)}
    assert post_json(client, "/api/v1/sensors", device(too_many), "gis").status_code == 422
    long_key = {"f" * 101: "no2"}
    assert post_json(client, "/api/v1/sensors", device(long_key), "gis").status_code == 422
    empty_key = {"": "no2"}
    assert post_json(client, "/api/v1/sensors", device(empty_key), "gis").status_code == 422
    at_the_limit = {f"{n:03d}".ljust(100, "f"): "no2" for n in range(50)}
    reply = post_json(client, "/api/v1/sensors", device(at_the_limit), "gis")
    assert reply.status_code == 201, reply.text
    assert reply.json()["device"]["fields"] == at_the_limit


def test_datastreams_are_one_to_fifty(client: TestClient) -> None:
    def sensor(count: int) -> dict[str, Any]:
        streams = [{"kind": f"q{n}", "unit": "1"} for n in range(count)]
        return {"id": f"multi-{count}", "name": "multi", "datastreams": streams}

    for count in (0, 51):
        reply = post_json(client, "/api/v1/sensors", sensor(count), "gis")
        assert reply.status_code == 422, (count, reply.text)
    reply = post_json(client, "/api/v1/sensors", sensor(50), "gis")
    assert reply.status_code == 201, reply.text
    assert len(reply.json()["datastreams"]) == 50


# -- assets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "bbox=nan,52,5,53",
        "bbox=4,52,inf,53",
        "bbox=-inf,-inf,inf,inf",
        "layer=parking%00",
    ],
)
def test_asset_list_parameters_that_cannot_be_used_are_a_422(
    client: TestClient, query: str
) -> None:
    assert client.get(f"/api/v1/assets?{query}", headers=auth(client, "viewer")).status_code == 422


def test_an_asset_id_with_a_nul_character_is_not_found(client: TestClient) -> None:
    path = "/api/v1/assets/0123456789abcdef%00"
    assert client.get(path, headers=auth(client, "viewer")).status_code == 404
    assert client.patch(path, json={"name": "x"}, headers=auth(client)).status_code == 404
    assert client.delete(path, headers=auth(client)).status_code == 404


@pytest.mark.parametrize("change", [{"name": "Zones \ud800"}, {"layer": "\x00"}])
def test_asset_metadata_that_cannot_be_stored_is_a_422(
    client: TestClient, change: dict[str, Any]
) -> None:
    reply = client.patch(
        "/api/v1/assets/0123456789abcdef",
        content=json.dumps(change).encode("ascii"),
        headers={**auth(client), "Content-Type": "application/json"},
    )
    assert reply.status_code == 422, reply.text
