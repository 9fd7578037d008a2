"""``/api/v1/parking``: zones and car parks created through the API (WGS 84 and RD New) or a
GeoJSON upload, listed, read and deleted by the roles the policy says; hostile input is a 422,
never a 500; a bay reading posted over HTTP shows in its zone."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.arserver.conftest import ALL_BACKENDS
from tests.arserver.support import auth

#: The router sits above the database; the tests that store and read back run on both.
BACKENDS = ("sqlite",)
BASE = "/api/v1/parking"
#: A square of about 70 x 110 m in Amsterdam (WGS 84 lon, lat).
SQUARE = [[4.9000, 52.3700], [4.9010, 52.3700], [4.9010, 52.3710], [4.9000, 52.3710]]
#: The Amersfoort reference point of RD New is (155000, 463000) = 5.38720621 E, 52.15517440 N.
RD_SQUARE = [[154950, 462950], [155050, 462950], [155050, 463050], [154950, 463050]]
AMERSFOORT = (5.38720621, 52.15517440)


def zone(**change: Any) -> dict[str, Any]:
    return {"kind": "zone", "id": "plein", "name": "Plein", "capacity": 12, "area": SQUARE} | change


def create(client: TestClient, body: dict[str, Any], role: str = "gis") -> Any:
    return client.post(f"{BASE}/places", json=body, headers=auth(client, role))


def test_zones_from_wgs84_and_rd_rings_are_stored_in_wgs84(client: TestClient) -> None:
    wgs = create(client, zone())
    assert wgs.status_code == 201, wgs.text
    assert wgs.headers["Location"] == f"{BASE}/places/plein"
    place = wgs.json()
    assert place["area"] == [*SQUARE, SQUARE[0]]  # closed
    assert place["extent"] == [4.9, 52.37, 4.901, 52.371]
    assert (place["kind"], place["capacity"], place["source"]) == ("zone", 12, "api")
    assert place["occupancy"]["unknown"] == 12  # no bay has said anything

    rd = create(client, zone(id="amersfoort", crs="EPSG:28992", area=RD_SQUARE))
    assert rd.status_code == 201, rd.text
    west, south, east, north = rd.json()["extent"]
    lon, lat = rd.json()["location"]
    assert west < lon < east
    assert south < lat < north
    assert math.isclose((west + east) / 2, AMERSFOORT[0], abs_tol=1e-5)
    assert math.isclose((south + north) / 2, AMERSFOORT[1], abs_tol=1e-5)
    assert 0.00140 < east - west < 0.00150  # 100 m of longitude at 52.16 N
    read = client.get(f"{BASE}/places/amersfoort", headers=auth(client, "viewer"))
    assert read.status_code == 200
    ring = read.json()["area"]
    assert len(ring) == 5
    assert ring[0] == ring[-1]
    assert min(p[0] for p in ring) == west
    assert max(p[1] for p in ring) == north


def test_car_parks_by_location_and_listings_by_kind_bbox_and_limit(client: TestClient) -> None:
    gis = auth(client, "gis")
    assert create(client, zone()).status_code == 201
    for ident, lon in (("p-west", 4.80), ("p-oost", 4.95)):
        body = {"kind": "car_park", "id": ident, "name": ident, "capacity": 300,
                "location": [lon, 52.36], "counter": ident, "operator": "Gemeente"}  # fmt: skip
        reply = client.post(f"{BASE}/places", json=body, headers=gis)
        assert reply.status_code == 201, reply.text
        assert reply.json()["extent"] == [lon, 52.36, lon, 52.36]
        assert reply.json()["area"] is None
    viewer = auth(client, "viewer")

    def ids(path: str) -> list[str]:
        reply = client.get(f"{BASE}/{path}", headers=viewer)
        assert reply.status_code == 200, reply.text
        return [p["id"] for p in reply.json()["places"]]

    assert ids("places") == ["p-oost", "p-west", "plein"]
    assert ids("places?kind=car_park") == ids("car-parks") == ["p-oost", "p-west"]
    assert ids("zones") == ["plein"]
    assert ids("places?bbox=4.85,52.3,5.0,52.4") == ["p-oost", "plein"]
    assert ids("car-parks?bbox=4.85,52.3,5.0,52.4") == ["p-oost"]
    assert ids("places?limit=1") == ["p-oost"]
    listed = client.get(f"{BASE}/zones", headers=viewer).json()["places"][0]
    assert "area" not in listed
    assert listed["occupancy"]["capacity"] == 12
    with_area = client.get(f"{BASE}/zones?area=true", headers=viewer).json()["places"][0]
    assert with_area["area"][0] == SQUARE[0]
    counter_park = client.get(f"{BASE}/places/p-west", headers=viewer).json()
    assert (counter_park["counter"], counter_park["operator"]) == ("p-west", "Gemeente")
    assert (
        "no_data" in counter_park["occupancy"]["flags"]
        or counter_park["occupancy"]["unknown"] == 300
    )


def test_read_delete_and_conflicts(client: TestClient) -> None:
    viewer, gis = auth(client, "viewer"), auth(client, "gis")
    assert client.get(f"{BASE}/places/plein", headers=viewer).status_code == 404
    assert create(client, zone()).status_code == 201
    assert create(client, zone()).status_code == 409  # the id is taken
    assert client.get(f"{BASE}/places/plein", headers=viewer).status_code == 200
    assert client.delete(f"{BASE}/places/plein", headers=gis).status_code == 204
    assert client.get(f"{BASE}/places/plein", headers=viewer).status_code == 404
    assert client.delete(f"{BASE}/places/plein", headers=gis).status_code == 404
    for missing in ("history", "profile", "forecast"):
        assert client.get(f"{BASE}/places/plein/{missing}", headers=viewer).status_code == 404
    assert client.get(f"{BASE}/places/{'x' * 300}", headers=viewer).status_code == 404


def test_readers_read_editors_manage_and_anonymous_callers_are_refused(
    client: TestClient,
) -> None:
    assert create(client, zone()).status_code == 201
    for role in ("viewer", "inspector", "planner"):
        headers = auth(client, role)
        assert client.get(f"{BASE}/places/plein", headers=headers).status_code == 200
        assert create(client, zone(id=f"by-{role}"), role=role).status_code == 403
        assert client.delete(f"{BASE}/places/plein", headers=headers).status_code == 403
    assert client.get(f"{BASE}/places", headers=auth(client, "ingest")).status_code == 403
    assert client.get(f"{BASE}/places").status_code == 401
    assert client.get(f"{BASE}/places/plein/forecast").status_code == 401
    assert client.post(f"{BASE}/places", json=zone(id="anon")).status_code == 401
    assert client.delete(f"{BASE}/places/plein").status_code == 401
    assert create(client, zone(id="by-admin"), role="admin").status_code == 201
    ids = [p["id"] for p in client.get(f"{BASE}/places", headers=auth(client)).json()["places"]]
    assert ids == ["by-admin", "plein"]


BOWTIE = [[4.90, 52.37], [4.91, 52.38], [4.91, 52.37], [4.90, 52.38]]
#: A valid ring, but of 6,000 points (at most 5,000 are allowed).
CIRCLE = [
    [round(4.9 + 0.01 * math.cos(a), 6), round(52.37 + 0.01 * math.sin(a), 6)]
    for a in (2 * math.pi * k / 6000 for k in range(6000))
]


HOSTILE_PLACES = [
    json.dumps(zone(location=[float("nan"), 52.37])),
    json.dumps(zone(area=[[4.9, 52.37], [float("inf"), 52.37], [4.9, 52.38]])),
    json.dumps(zone())[:-1] + ', "capacity": 1e400}',  # duplicate key, infinite
    json.dumps(zone(capacity=10**30)),
    json.dumps(zone(capacity=-1)),
    json.dumps(zone(area=[[1e300, 1e300], [2e300, 1e300], [2e300, 2e300]])),
    json.dumps(zone(area=BOWTIE)),
    json.dumps(zone(area=CIRCLE)),
    json.dumps(zone(area=[[4.9, 52.37], [4.91, 52.37]])),
    json.dumps(zone(area=[[4.9, 52.37], [4.9, 52.37], [4.9, 52.37], [4.9, 52.37]])),
    json.dumps(zone(area=["abc", "def", "ghi"])),
    json.dumps(zone(area=[[4.9, 52.37], [4.91, 52.37], [4.91, 95.0]])),
    json.dumps(zone(id="has spaces")),
    json.dumps(zone(id="../../etc")),
    json.dumps(zone(id="x" * 101)),
    json.dumps(zone(kind="garage")),
    json.dumps(zone(name="")),
    json.dumps(zone(name="nul\u0000byte")),
    json.dumps(zone(surprise=1)),
    json.dumps(zone(crs="EPSG:999999", area=RD_SQUARE)),
    json.dumps(zone(crs="EPSG:28992", area=[[9e9, 9e9], [9e9 + 1, 9e9], [9e9, 9e9 + 1]])),
    json.dumps(zone(area=None)),  # a zone without area or bays
    json.dumps({"kind": "car_park", "name": "P", "capacity": 5}),  # nowhere
    json.dumps(zone(bays=["bay 1"])),
    json.dumps(zone(bays=[f"b{n}" for n in range(10_001)])),
    '{"kind": "zone", "name": ',
    "[]",
]


def test_hostile_place_definitions_are_refused_with_422(client: TestClient) -> None:
    headers = {**auth(client), "Content-Type": "application/json"}
    for text in HOSTILE_PLACES:
        reply = client.post(f"{BASE}/places", content=text.encode(), headers=headers)
        assert reply.status_code in (400, 422), (text[:200], reply.status_code, reply.text[:300])
    assert client.get(f"{BASE}/places", headers=headers).json() == {"places": []}


BAD_LISTINGS = [
    "bbox=a,b,c,d",
    "bbox=4,52,5",
    "bbox=5,52,4,53",  # west > east
    "bbox=4,53,5,52",  # south > north
    "bbox=4,52,4,53",  # no width
    "bbox=nan,52,5,53",
    "bbox=-inf,52,5,53",
    "bbox=0,0,200,10",
    "bbox=" + "1," * 150,
    "limit=0",
    "limit=5001",
    "limit=1e3",
    "kind=garage",
    "area=maybe",
]


def test_bad_listing_queries_are_refused_with_422(client: TestClient) -> None:
    viewer = auth(client, "viewer")
    for query in BAD_LISTINGS:
        for path in ("places", "zones", "car-parks"):
            if path != "places" and query.startswith("kind="):
                continue
            reply = client.get(f"{BASE}/{path}?{query}", headers=viewer)
            assert reply.status_code == 422, (path, query, reply.status_code, reply.text[:300])


BAD_HISTORIES = [
    "start=2026-05-01T00:00:00",  # no time zone
    "end=2026-05-01",
    "start=yesterday",
    "start=2026-05-02T00:00:00Z&end=2026-05-01T00:00:00Z",  # start after end
    "window=15m&start=2000-01-01T00:00:00Z&end=2026-01-01T00:00:00Z",  # 911,000 buckets
    "window=1d&start=0001-01-01T00:00:00Z",
    "end=0001-01-01T00:30:00%2B01:00",  # before year 1 in UTC
    "end=0001-01-01T00:00:00Z",  # no default start before it
    "window=5m",
]


def test_bad_history_queries_are_refused_with_422(client: TestClient) -> None:
    assert create(client, zone()).status_code == 201
    viewer = auth(client, "viewer")
    for query in BAD_HISTORIES:
        reply = client.get(f"{BASE}/places/plein/history?{query}", headers=viewer)
        assert reply.status_code == 422, (query, reply.status_code, reply.text[:300])
    fine = client.get(
        f"{BASE}/places/plein/history?window=1d&start=2000-01-01T00:00:00Z", headers=viewer
    )
    assert fine.status_code == 200, fine.text


def feature(ident: Any, ring: Sequence[Sequence[float]], **properties: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": ident,
        "properties": properties,
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
    }


def test_geojson_import_honours_the_legacy_crs_member_and_is_all_or_nothing(
    client: TestClient,
) -> None:
    gis, viewer = auth(client, "gis"), auth(client, "viewer")
    document = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::28992"}},
        "features": [
            feature("vak-1", RD_SQUARE, naam="Vak 1", capaciteit=30),
            feature(7, [[x + 200, y] for x, y in RD_SQUARE], naam="Vak 7", capaciteit=8),
        ],
    }
    reply = client.post(f"{BASE}/zones/import", json=document, headers=gis)
    assert reply.status_code == 201, reply.text
    assert sorted(reply.json()["created"]) == ["7", "vak-1"]
    first = client.get(f"{BASE}/places/vak-1", headers=viewer).json()
    assert (first["name"], first["capacity"], first["source"]) == ("Vak 1", 30, "geojson")
    assert first["location"] == pytest.approx(AMERSFOORT, abs=5e-4)

    spaces = {"type": "FeatureCollection", "features": [feature("a", SQUARE, spaces=4)]}
    query = f"{BASE}/zones/import?capacity_property=plekken"
    assert client.post(query, json=spaces, headers=gis).status_code == 422  # no such property
    # A WGS 84 document read as RD: a few metres from Amersfoort's origin, outside RD's range.
    as_rd = client.post(f"{BASE}/zones/import?crs=EPSG:28992", json=spaces, headers=gis)
    assert as_rd.status_code == 422, as_rd.text
    broken = {
        "type": "FeatureCollection",
        "features": [feature("b", SQUARE, capacity=4), feature("c", BOWTIE, capacity=4)],
    }
    assert client.post(f"{BASE}/zones/import", json=broken, headers=gis).status_code == 422
    assert client.get(f"{BASE}/places/b", headers=viewer).status_code == 404  # nothing kept
    ok = client.post(f"{BASE}/zones/import", json=spaces, headers=gis)
    assert ok.status_code == 201
    assert ok.json() == {"created": ["a"]}
    assert client.post(f"{BASE}/zones/import", json=spaces, headers=gis).status_code == 409
    assert client.post(f"{BASE}/zones/import", json=spaces).status_code == 401
    assert client.post(f"{BASE}/zones/import", json=spaces, headers=viewer).status_code == 403


HOSTILE_DOCUMENTS = [
    [],
    {"type": "Feature"},
    {"type": "FeatureCollection", "features": []},
    {"type": "FeatureCollection", "features": "many"},
    {"type": "FeatureCollection", "features": [1, 2]},
    {"type": "FeatureCollection", "features": [feature("a b", SQUARE, capacity=3)]},
    {"type": "FeatureCollection", "features": [feature(["x"], SQUARE, capacity=3)]},
    {"type": "FeatureCollection", "features": [feature("z", SQUARE, capacity=True)]},
    {"type": "FeatureCollection", "features": [feature("z", SQUARE, capacity=2.5)]},
    {"type": "FeatureCollection", "features": [feature("z", SQUARE, capacity="9")]},
    {"type": "FeatureCollection", "features": [feature("z", SQUARE, capacity=1e300)]},
    {"type": "FeatureCollection", "features": [feature("z", SQUARE, capacity=10**400)]},
    {"type": "FeatureCollection", "features": [feature(10**30, SQUARE, capacity=3)]},
    {
        "type": "FeatureCollection",
        "features": [feature("z", SQUARE, name="\u0000", capacity=1)],
    },
    *(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"capacity": 1},
                    "geometry": {"type": kind, "coordinates": coordinates},
                }
            ],
        }
        for kind, coordinates in (
            ("MultiPolygon", [[[1, 2, 3]]]),
            ("MultiPolygon", [[["a", "b"]]]),
            ("MultiPolygon", [[]]),
            ("MultiPolygon", [1]),
            ("MultiPolygon", {"a": 1}),
            ("MultiPolygon", [[BOWTIE]]),
            ("Polygon", [[1, 2, 3]]),
            ("Polygon", [["ab"]]),
            ("Polygon", [None]),
            ("Polygon", "xyz"),
            ("Polygon", []),
            ("Polygon", [[[4, 52]]]),
            ("Polygon", [[[4, 52, 1, 2, 3]] * 4]),
            ("GeometryCollection", []),
        )
    ),
    {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [4, 52]},
                "properties": {"capacity": 1},
            }
        ],
    },
    *(
        {"type": "FeatureCollection", "crs": crs, "features": [feature("z", SQUARE, capacity=3)]}
        for crs in ("EPSG:28992", {"properties": "EPSG:28992"}, {"properties": [1]}, [])
    ),
    {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::999999"}},
        "features": [feature("z", SQUARE, capacity=3)],
    },
]


def test_hostile_geojson_imports_are_refused_with_422(client: TestClient) -> None:
    gis = auth(client, "gis")
    for document in HOSTILE_DOCUMENTS:
        reply = client.post(f"{BASE}/zones/import", json=document, headers=gis)
        assert reply.status_code == 422, (document, reply.status_code, reply.text[:300])
    assert client.get(f"{BASE}/places", headers=gis).json() == {"places": []}


@pytest.mark.parametrize("settings", ALL_BACKENDS, indirect=True)
def test_a_bay_reading_posted_over_http_shows_in_its_zone(client: TestClient) -> None:
    gis, viewer = auth(client, "gis"), auth(client, "viewer")
    for bay, lon in (("bay-1", 4.9003), ("bay-2", 4.9006)):
        body = {"id": bay, "name": bay, "kind": "parking_bay", "unit": "1",
                "location": [lon, 52.3705]}  # fmt: skip
        assert client.post("/api/v1/sensors", json=body, headers=gis).status_code == 201
    outside = {"id": "bay-far", "name": "far", "kind": "parking_bay", "unit": "1",
               "location": [4.95, 52.3705]}  # fmt: skip
    assert client.post("/api/v1/sensors", json=outside, headers=gis).status_code == 201
    assert create(client, zone(capacity=None)).status_code == 201  # one space per bay
    now = datetime.now(UTC).isoformat()
    items = [{"sensor": "bay-1", "time": now, "value": 1}, {"sensor": "bay-far", "time": now,
             "value": 1}]  # fmt: skip
    posted = client.post(
        "/api/v1/observations", json={"observations": items}, headers=auth(client, "ingest")
    )
    assert posted.status_code == 200, posted.text
    assert posted.json()["accepted"] == 2

    place = client.get(f"{BASE}/places/plein", headers=viewer).json()
    occupancy = place["occupancy"]
    assert (occupancy["capacity"], occupancy["occupied"], occupancy["free"]) == (2, 1, 0)
    assert (occupancy["unknown"], occupancy["silent_bays"]) == (1, ["bay-2"])
    assert occupancy["occupancy"] == 1.0  # of the known part

    forecast = client.get(f"{BASE}/places/plein/forecast", headers=viewer).json()
    assert forecast["place"] == "plein"
    assert [f["horizon_min"] for f in forecast["forecast"]] == [15, 30, 60]
    origin = datetime.fromisoformat(forecast["time"])
    first = forecast["forecast"][0]
    assert (datetime.fromisoformat(first["at"]) - origin).total_seconds() == 900
    assert first["method"] in ("last_value", "profile_delta", "model")
    assert 0 <= first["interval_80"][0] <= first["free"] <= first["interval_80"][1] <= 2

    history = client.get(f"{BASE}/places/plein/history?window=15m", headers=viewer)
    assert history.status_code == 200, history.text
    buckets = history.json()["buckets"]
    assert buckets, history.text
    assert (buckets[-1]["occupancy"], buckets[-1]["capacity"]) == (1.0, 2)
    profile = client.get(f"{BASE}/places/plein/profile", headers=viewer)
    assert profile.status_code == 200, profile.text
    assert profile.json()["place"] == "plein"
    assert profile.json()["samples"] >= 1
