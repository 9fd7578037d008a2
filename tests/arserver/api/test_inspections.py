"""``/api/v1/inspections`` through the application: findings where the inspector stands (WGS 84
or RD New + NAP) or on an asset feature, the workflow over HTTP, photos cleaned of their
metadata end to end, filters and paging, GeoJSON and CSV exports, hostile input, and live
delivery with ``enter`` when the inspector walks within ``proximity_m``."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, insert, select

from arserver.api import inspections as inspections_api
from arserver.app import create_app
from arserver.config import Settings
from arserver.services import inspections as inspection_service
from arserver.services import photos
from arserver.store.schema import asset_features, inspection_events, inspection_photos, inspections
from tests.arserver.support import Live, auth, engine_of, insert_asset, receive, tokens_for

BACKENDS = ("sqlite",)

HERE = [4.8952, 52.3702, 43.1]  # Dam square, Amsterdam
SERIAL = "SN-CAMERA-0042-XYZZY"
GPS_LATITUDE_REF = "N"


@pytest.fixture
def inspector(client: TestClient) -> dict[str, str]:
    return auth(client, "inspector")


@pytest.fixture
def viewer(client: TestClient) -> dict[str, str]:
    return auth(client, "viewer")


def record(client: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"location": HERE, "category": "damage", "description": "Kerb stone broken"}
    response = client.post("/api/v1/inspections", json={**body, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


def patch(client: TestClient, headers: dict[str, str], iid: str, **body: Any) -> Any:
    return client.patch(f"/api/v1/inspections/{iid}", json=body, headers=headers)


def count(client: TestClient, table: Any) -> int:
    with engine_of(client).connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


# -- recording -------------------------------------------------------------------------------


def test_a_finding_is_recorded_open_with_its_history_and_location_header(
    client: TestClient, inspector: dict[str, str], viewer: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/inspections",
        json={"location": HERE, "category": "hazard", "description": "Cable exposed",
              "severity": "urgent", "assignee": "team-kabels"},
        headers=inspector,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "open"
    assert response.headers["location"] == body["url"] == f"/api/v1/inspections/{body['id']}"
    assert body["location"] == HERE
    assert (body["category"], body["severity"], body["assignee"]) == (
        "hazard", "urgent", "team-kabels",
    )  # fmt: skip
    assert body["created_by"] == "inspector token"
    [created] = body["history"]
    assert created["change"] == "created"
    assert created["to_status"] == "open"
    assert created["actor"] == "inspector token"
    again = client.get(body["url"], headers=viewer)
    assert again.status_code == 200
    assert again.json() == body


def test_the_default_severity_is_normal_and_the_vocabulary_is_listed(
    client: TestClient, inspector: dict[str, str], viewer: dict[str, str]
) -> None:
    assert record(client, inspector)["severity"] == "normal"
    vocabulary = client.get("/api/v1/inspections/categories", headers=viewer).json()
    assert vocabulary == {
        "categories": ["damage", "hazard", "obstruction", "vandalism", "missing", "other"],
        "severities": ["low", "normal", "high", "urgent"],
        "statuses": ["open", "in_progress", "resolved", "rejected"],
    }


def test_categories_come_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", embedded_worker=False, inspection_categories=["riool", "boom"]
    )
    with TestClient(create_app(settings)) as client:
        headers = auth(client, "inspector")
        refused = client.post(
            "/api/v1/inspections",
            json={"location": HERE, "category": "damage", "description": "d"},
            headers=headers,
        )
        assert refused.status_code == 422
        assert refused.json()["detail"] == "category 'damage' is not one of: riool, boom"
        assert record(client, headers, category="boom")["category"] == "boom"


def test_rd_new_and_nap_input_lands_on_the_official_etrs89_position(
    client: TestClient, inspector: dict[str, str], nsgi_inside: np.ndarray
) -> None:
    # NSGI's own pairs (RD + NAP, ETRS89) from the RDNAPTRANS(TM)2018 validation set, within
    # the default extent: the first, the northernmost, southernmost, westernmost and easternmost.
    d = nsgi_inside
    within = d[(d["etrs89_lon"] > 3.2) & (d["etrs89_lon"] < 7.3)]
    within = within[(within["etrs89_lat"] > 50.7) & (within["etrs89_lat"] < 53.7)]
    picks = {0, *(int(within[k].argmax()) for k in ("etrs89_lat", "etrs89_lon"))}
    picks |= {int(within[k].argmin()) for k in ("etrs89_lat", "etrs89_lon")}
    assert len(picks) == 5
    for point in within[sorted(picks)]:
        rd = [float(point["rd_x"]), float(point["rd_y"]), float(point["nap_h"])]
        body = record(client, inspector, location=rd, crs="EPSG:7415")
        lon, lat, h = body["location"]
        assert abs(lon - point["etrs89_lon"]) <= 1e-7, point["point_id"]
        assert abs(lat - point["etrs89_lat"]) <= 1e-7, point["point_id"]
        assert abs(h - point["etrs89_h"]) <= 0.001, point["point_id"]


@pytest.mark.parametrize(
    ("location", "crs"),
    [([52.3702, 4.8952, 0.0], None), ([2.35, 48.85, 35.0], None),
     ([-5000.0, 300000.0], "EPSG:28992")],
)  # fmt: skip
def test_a_place_outside_the_extent_is_refused_and_nothing_is_written(
    client: TestClient, inspector: dict[str, str], location: list[float], crs: str | None
) -> None:
    body: dict[str, Any] = {"location": location, "category": "damage", "description": "d"}
    if crs:
        body["crs"] = crs
    response = client.post("/api/v1/inspections", json=body, headers=inspector)
    assert response.status_code == 422, response.text
    assert "outside the municipality's extent" in response.json()["detail"] or (
        "EPSG:28992" in response.json()["detail"]
    )
    assert count(client, inspections) == count(client, inspection_events) == 0


def test_a_finding_on_an_asset_feature_takes_its_position_and_bad_ones_are_refused(
    client: TestClient, inspector: dict[str, str]
) -> None:
    engine = engine_of(client)
    insert_asset(engine, "lamps", extent=(4.89, 52.36, 4.90, 52.38))
    insert_asset(engine, "queued", status="queued")
    with engine.begin() as connection:
        connection.execute(
            insert(asset_features).values(
                asset_id="lamps", feature_id="lamp-0412", lon=4.8951, lat=52.3701, h=45.0
            )
        )
    on_feature = {"category": "damage", "description": "Leaning", "asset": "lamps"}
    body = record(client, inspector, location=None, feature="lamp-0412", **on_feature)
    assert body["location"] == [4.8951, 52.3701, 45.0]
    assert (body["asset"], body["feature"]) == ("lamps", "lamp-0412")
    for extra, message in [
        ({"asset": "lamps", "feature": "lamp-9999"}, "asset 'lamps' has no feature 'lamp-9999'"),
        ({"asset": "deleted-one", "feature": "x"}, "there is no asset 'deleted-one'"),
        ({"asset": "queued"}, "not published yet"),
        ({"feature": "lamp-0412"}, "together with its asset"),
    ]:
        response = client.post(
            "/api/v1/inspections",
            json={"category": "damage", "description": "d", **extra},
            headers=inspector,
        )
        assert response.status_code == 422, (extra, response.text)
        assert message in response.json()["detail"]
    assert count(client, inspections) == 1


def test_links_to_sensors_and_alerts_must_exist(
    client: TestClient, inspector: dict[str, str]
) -> None:
    gis = auth(client, "gis")
    sensor = {"id": "water-3", "name": "w", "kind": "water_level", "unit": "m",
              "location": HERE[:2]}  # fmt: skip
    assert client.post("/api/v1/sensors", json=sensor, headers=gis).status_code == 201
    assert record(client, inspector, sensors=["water-3"])["sensors"] == ["water-3"]
    for links, message in [
        ({"sensors": ["water-3", "nope"]}, "there is no sensor 'nope'"),
        ({"alerts": ["a1"]}, "there is no alert 'a1'"),
    ]:
        response = client.post(
            "/api/v1/inspections",
            json={"location": HERE, "category": "damage", "description": "d", **links},
            headers=inspector,
        )
        assert response.status_code == 422
        assert response.json()["detail"] == message
    too_many = client.post(
        "/api/v1/inspections",
        json={"location": HERE, "category": "damage", "description": "d",
              "sensors": [f"s{n}" for n in range(21)]},
        headers=inspector,
    )  # fmt: skip
    assert too_many.status_code == 422
    assert count(client, inspections) == 1


def test_readers_read_and_only_inspectors_gis_and_admins_write(client: TestClient) -> None:
    made = record(client, auth(client, "inspector"))
    body = {"location": HERE, "category": "damage", "description": "d"}
    for role in ("gis", "admin"):
        assert (
            client.post("/api/v1/inspections", json=body, headers=auth(client, role)).status_code
            == 201
        )
    for role in ("viewer", "planner", "ingest"):
        headers = auth(client, role)
        assert client.post("/api/v1/inspections", json=body, headers=headers).status_code == 403
        assert patch(client, headers, made["id"], status="in_progress").status_code == 403
    # Refused before the body is looked at: a viewer's invalid body is 403, not 422.
    assert (
        client.post("/api/v1/inspections", json={}, headers=auth(client, "viewer")).status_code
        == 403
    )
    assert client.get("/api/v1/inspections", headers=auth(client, "planner")).status_code == 200
    assert client.get("/api/v1/inspections", headers=auth(client, "ingest")).status_code == 403
    assert client.get("/api/v1/inspections").status_code == 401


# -- the workflow over HTTP ------------------------------------------------------------------


def test_the_workflow_and_its_history_over_http(
    client: TestClient, inspector: dict[str, str]
) -> None:
    iid = record(client, inspector)["id"]
    planner = auth(client, "gis")
    started = patch(client, planner, iid, status="in_progress", assignee="team-wegen")
    assert started.status_code == 200, started.text
    assert started.json()["assignee"] == "team-wegen"
    refused = patch(client, inspector, iid, status="resolved")
    assert refused.status_code == 422
    assert "note" in refused.json()["detail"]
    done = patch(client, inspector, iid, status="resolved", note="Stone replaced")
    assert done.status_code == 200
    assert done.json()["closed_at"] is not None
    for status in ("in_progress", "rejected"):
        conflict = patch(client, inspector, iid, status=status, note="x")
        assert conflict.status_code == 409
        assert "can only be reopened" in conflict.json()["detail"]
    closed_edit = patch(client, inspector, iid, severity="high")
    assert closed_edit.status_code == 409
    assert "reopen it" in closed_edit.json()["detail"]
    assert patch(client, inspector, iid, status="open").status_code == 422
    reopened = patch(client, inspector, iid, status="open", note="Loose again", assignee=None)
    assert reopened.status_code == 200
    body = reopened.json()
    assert body["assignee"] is None
    assert body["closed_at"] is None
    history = [
        (e["change"], e["from_status"], e["to_status"], e["assignee"], e["note"], e["actor"])
        for e in body["history"]
    ]
    assert history == [
        ("created", None, "open", None, None, "inspector token"),
        ("assigned", None, None, "team-wegen", None, "gis token"),
        ("status", "open", "in_progress", None, None, "gis token"),
        ("status", "in_progress", "resolved", None, "Stone replaced", "inspector token"),
        ("assigned", None, None, None, None, "inspector token"),
        ("status", "resolved", "open", None, "Loose again", "inspector token"),
    ]
    times = [e["at"] for e in body["history"]]
    assert times == sorted(times)


def test_the_history_pages_back_from_the_newest_entries(
    client: TestClient,
    inspector: dict[str, str],
    viewer: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(inspection_service, "HISTORY_PAGE", 2)
    iid = record(client, inspector)["id"]
    for k in range(4):
        assert patch(client, inspector, iid, note=f"note {k}").status_code == 200
    detail = client.get(f"/api/v1/inspections/{iid}", headers=viewer).json()
    assert detail["history_total"] == 5
    assert [e["note"] for e in detail["history"]] == ["note 2", "note 3"]
    notes: list[str | None] = []
    cursor = detail["history_next"]
    while cursor is not None:
        older = client.get(f"/api/v1/inspections/{iid}?history_before={cursor}", headers=viewer)
        assert older.status_code == 200, older.text
        notes = [e["note"] for e in older.json()["history"]] + notes
        cursor = older.json()["history_next"]
    assert notes == [None, "note 0", "note 1"]
    for bad in ("0", "-1", "abc", str(2**63), "1e3"):
        response = client.get(f"/api/v1/inspections/{iid}?history_before={bad}", headers=viewer)
        assert response.status_code == 422, bad
    # A change answers with the newest page too.
    changed = patch(client, inspector, iid, note="note 4").json()
    assert [e["note"] for e in changed["history"]] == ["note 3", "note 4"]
    assert changed["history_total"] == 6


def test_changes_past_the_history_limit_are_409_and_write_nothing(
    client: TestClient, inspector: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inspection_service, "MAX_HISTORY", 2)
    iid = record(client, inspector)["id"]
    assert patch(client, inspector, iid, note="fits").status_code == 200
    refused = patch(client, inspector, iid, status="in_progress")
    assert refused.status_code == 409
    assert "limit of 2 history entries" in refused.json()["detail"]
    photo = upload_photo(client, inspector, iid, phone_photo())
    assert photo.status_code == 409
    assert count(client, inspection_events) == 2
    assert count(client, inspection_photos) == 0


def test_a_patch_that_changes_nothing_writes_nothing(
    client: TestClient, inspector: dict[str, str]
) -> None:
    made = record(client, inspector, severity="high")
    same = patch(client, inspector, made["id"], status="open", severity="high", category="damage")
    assert same.status_code == 200
    assert same.json()["updated_at"] == made["updated_at"]
    assert count(client, inspection_events) == 1
    noted = patch(client, inspector, made["id"], note="Checked again, unchanged")
    assert [e["change"] for e in noted.json()["history"]] == ["created", "note"]


def test_an_unknown_inspection_is_404_and_bad_patches_are_422(
    client: TestClient, inspector: dict[str, str], viewer: dict[str, str]
) -> None:
    for iid in ("nope", "x" * 200, "%00"):
        assert client.get(f"/api/v1/inspections/{iid}", headers=viewer).status_code == 404
        assert patch(client, inspector, iid, status="in_progress").status_code == 404
    iid = record(client, inspector)["id"]
    for body in ({"status": "closed"}, {"severity": "extreme"}, {"unknown": 1},
                 {"description": ""}, {"assignee": "x" * 201}):  # fmt: skip
        assert patch(client, inspector, iid, **body).status_code == 422, body


# -- hostile input ---------------------------------------------------------------------------


def test_script_and_sql_text_is_stored_and_returned_verbatim(
    client: TestClient, inspector: dict[str, str], viewer: dict[str, str]
) -> None:
    text = "Robert'); DROP TABLE inspections;-- <img src=x onerror=alert(1)> ${7*7} {{7*7}}"
    made = record(client, inspector, description=text, assignee=text)
    iid = made["id"]
    noted = patch(client, inspector, iid, note=text, status="in_progress")
    assert noted.json()["history"][-1]["note"] == text
    read = client.get(f"/api/v1/inspections/{iid}", headers=viewer).json()
    assert read["description"] == read["assignee"] == text
    assert count(client, inspections) == 1


HOSTILE_BODIES: list[dict[str, Any]] = [
    {"location": HERE, "category": "damage", "description": "\ud800"},
    {"location": HERE, "category": "damage", "description": "a\u0000b"},
    {"location": HERE, "category": "damage", "description": ""},
    {"location": HERE, "category": "damage", "description": "x" * 5001},
    {"location": HERE, "category": "damage\ud800", "description": "d"},
    {"location": [10**400, 52.0], "category": "damage", "description": "d"},
    {"location": [True, 52.0], "category": "damage", "description": "d"},
    {"location": ["4.9", "52.3"], "category": "damage", "description": "d"},
    {"location": [4.9], "category": "damage", "description": "d"},
    {"location": [4.9, 52.3, 1e308 * 10], "category": "damage", "description": "d"},
    {"location": [4.9, 52.3, 50_000.0], "category": "damage", "description": "d"},
    {"location": HERE, "crs": "EPSG:999999", "category": "damage", "description": "d"},
    {"location": HERE, "category": "damage", "description": "d", "severity": "extreme"},
    {"category": "damage", "description": "d"},
    {"location": HERE, "category": "damage", "description": "d", "sensors": [1]},
]


def test_hostile_bodies_get_a_clear_422_and_nothing_is_written(
    client: TestClient, inspector: dict[str, str]
) -> None:
    for body in HOSTILE_BODIES:
        text = json.dumps(body)  # lone surrogates and NaN as JSON writes them
        response = client.post(
            "/api/v1/inspections",
            content=text,
            headers={**inspector, "Content-Type": "application/json"},
        )
        assert response.status_code == 422, (body, response.text)
    assert count(client, inspections) == count(client, inspection_events) == 0


def test_a_20_mb_body_is_refused_by_the_guard(
    client: TestClient, inspector: dict[str, str]
) -> None:
    body = {"location": HERE, "category": "damage", "description": "x" * (20 << 20)}
    response = client.post("/api/v1/inspections", json=body, headers=inspector)
    assert response.status_code == 413
    assert count(client, inspections) == 0


# -- photos ----------------------------------------------------------------------------------


def phone_photo() -> bytes:
    """A JPEG as a phone writes it: EXIF with a GPS position and the camera's serial."""
    image = Image.new("RGB", (640, 480), (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Model-7"  # Model
    exif[0xA431] = SERIAL  # BodySerialNumber
    exif[0x8825] = {  # the GPS IFD
        1: GPS_LATITUDE_REF,
        2: (52.0, 22.0, 12.72),
        3: "E",
        4: (4.0, 53.0, 42.72),
    }
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    data = buffer.getvalue()
    assert SERIAL.encode() in data
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)[1] == GPS_LATITUDE_REF
    return data


def upload_photo(
    client: TestClient, headers: dict[str, str], iid: str, data: bytes, name: str = "p.jpg"
) -> Any:
    return client.post(
        f"/api/v1/inspections/{iid}/photos", files={"file": (name, data)}, headers=headers
    )


def test_a_photo_is_served_without_its_gps_and_camera_serial(
    client: TestClient, inspector: dict[str, str], viewer: dict[str, str]
) -> None:
    iid = record(client, inspector)["id"]
    original = phone_photo()
    response = upload_photo(client, inspector, iid, original)
    assert response.status_code == 201, response.text
    photo = response.json()
    assert photo["url"] == f"/api/v1/inspections/{iid}/photos/{photo['id']}"
    assert response.headers["location"] == photo["url"]
    assert (photo["width"], photo["height"], photo["content_type"]) == (640, 480, "image/jpeg")
    served = client.get(photo["url"], headers=viewer)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["cache-control"].startswith("private, max-age=")
    data = served.content
    assert SERIAL.encode() not in data
    assert b"PhoneMaker" not in data
    assert b"Exif" not in data
    cleaned = Image.open(io.BytesIO(data))
    assert cleaned.size == (640, 480)
    assert not cleaned.getexif()
    assert not cleaned.getexif().get_ifd(0x8825)
    thumbnail = client.get(photo["thumbnail"], headers=viewer)
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumbnail.content)).size) <= 320
    assert SERIAL.encode() not in thumbnail.content
    etag = served.headers["etag"]
    again = client.get(photo["url"], headers={**viewer, "If-None-Match": etag})
    assert again.status_code == 304
    assert thumbnail.headers["etag"] != etag
    detail = client.get(f"/api/v1/inspections/{iid}", headers=viewer).json()
    assert [p["id"] for p in detail["photos"]] == [photo["id"]]
    assert [e["change"] for e in detail["history"]] == ["created", "photo"]
    assert detail["history"][1]["actor"] == "inspector token"


def test_a_png_stays_png(client: TestClient, inspector: dict[str, str]) -> None:
    iid = record(client, inspector)["id"]
    buffer = io.BytesIO()
    Image.new("RGB", (32, 16), (0, 0, 255)).save(buffer, format="PNG")
    photo = upload_photo(client, inspector, iid, buffer.getvalue(), "s.png").json()
    served = client.get(photo["url"], headers=inspector)
    assert served.headers["content-type"] == "image/png"
    assert client.get(photo["thumbnail"], headers=inspector).headers["content-type"] == "image/jpeg"


def test_photos_that_are_not_images_or_too_large_are_refused_and_nothing_is_written(
    client: TestClient, inspector: dict[str, str], settings: Settings
) -> None:
    iid = record(client, inspector)["id"]
    for data in (b"<html><script>alert(1)</script></html>", b"\xff\xd8\xff\xe0 truncated"):
        refused = upload_photo(client, inspector, iid, data)
        assert refused.status_code == 422, refused.text
    polyglot = phone_photo() + b"PK\x03\x04" + b"zip archive" * 100
    assert upload_photo(client, inspector, iid, polyglot).status_code == 422
    assert upload_photo(client, inspector, iid, b"").status_code == 422
    missing = client.post(
        f"/api/v1/inspections/{iid}/photos", data={"other": "x"}, headers=inspector
    )
    assert missing.status_code == 422
    too_big = b"\xff\xd8" + b"\0" * int(settings.max_photo_mib * (1 << 20))
    assert upload_photo(client, inspector, iid, too_big).status_code == 413
    assert count(client, inspection_photos) == 0
    assert count(client, inspection_events) == 1


def test_a_photo_is_503_busy_while_others_hold_every_decoding_turn(
    client: TestClient, inspector: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    iid = record(client, inspector)["id"]
    monkeypatch.setattr(photos, "DECODE_WAIT_S", 0.0)
    with ExitStack() as held:
        for _ in range(photos.MAX_CONCURRENT_DECODES):
            held.enter_context(photos.decoding_turn(wait_s=0))
        busy = upload_photo(client, inspector, iid, phone_photo())
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "5"
    assert "busy decoding other photos" in busy.json()["detail"]
    assert count(client, inspection_photos) == 0
    assert upload_photo(client, inspector, iid, phone_photo()).status_code == 201


def test_photo_uploads_beyond_the_threads_they_may_hold_are_refused_at_once(
    client: TestClient, inspector: dict[str, str]
) -> None:
    """Uploads never queue up in the thread pool every route shares: with every photo thread
    taken, the next upload is 503 without entering it (the decoding turns are free here, so
    an upload that did enter would be stored)."""
    from arserver.api import inspections as routes

    iid = record(client, inspector)["id"]
    taken = 0
    while routes._PHOTO_THREADS.acquire(blocking=False):
        taken += 1
    try:
        busy = upload_photo(client, inspector, iid, phone_photo())
    finally:
        for _ in range(taken):
            routes._PHOTO_THREADS.release()
    assert taken == 2 * photos.MAX_CONCURRENT_DECODES
    assert busy.status_code == 503
    assert count(client, inspection_photos) == 0
    assert upload_photo(client, inspector, iid, phone_photo()).status_code == 201


def test_a_decompression_bomb_is_refused_with_413(
    client: TestClient, inspector: dict[str, str]
) -> None:
    iid = record(client, inspector)["id"]
    buffer = io.BytesIO()
    Image.new("L", (10_000, 6_000)).save(buffer, format="PNG")  # 60 Mpx of zeros, small file
    response = upload_photo(client, inspector, iid, buffer.getvalue(), "bomb.png")
    assert response.status_code == 413
    assert count(client, inspection_photos) == 0


def test_an_unknown_photo_or_one_of_another_inspection_is_404(
    client: TestClient, inspector: dict[str, str]
) -> None:
    first = record(client, inspector)["id"]
    second = record(client, inspector)["id"]
    photo = upload_photo(client, inspector, first, phone_photo()).json()
    assert client.get(photo["url"], headers=inspector).status_code == 200
    other = f"/api/v1/inspections/{second}/photos/{photo['id']}"
    assert client.get(other, headers=inspector).status_code == 404
    unknown = f"/api/v1/inspections/{first}/photos/nope"
    assert client.get(unknown, headers=inspector).status_code == 404
    assert upload_photo(client, inspector, "nope", phone_photo()).status_code == 404
    assert client.get(photo["url"] + "?size=huge", headers=inspector).status_code == 422


# -- listing, filters and exports ------------------------------------------------------------


@pytest.fixture
def findings(client: TestClient, inspector: dict[str, str]) -> list[dict[str, Any]]:
    """Five findings along a street, oldest first: damage, hazard, damage (on asset lamps,
    in progress), other (resolved), vandalism."""
    insert_asset(engine_of(client), "lamps", extent=(4.80, 52.30, 4.90, 52.40))
    made = []
    for n, category in enumerate(["damage", "hazard", "damage", "other", "vandalism"]):
        extra: dict[str, Any] = {"asset": "lamps"} if n == 2 else {}
        made.append(
            record(client, inspector, category=category,
                   location=[4.80 + n / 100, 52.30, 0.0], **extra)
        )  # fmt: skip
    assert patch(client, inspector, made[2]["id"], status="in_progress").status_code == 200
    closed = patch(client, inspector, made[3]["id"], status="resolved", note="fixed")
    assert closed.status_code == 200
    return made


def ids(client: TestClient, query: str, headers: dict[str, str]) -> list[str]:
    response = client.get(f"/api/v1/inspections?{query}", headers=headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["inspections"]]


def test_listings_filter_by_area_status_category_asset_and_time(
    client: TestClient, viewer: dict[str, str], findings: list[dict[str, Any]]
) -> None:
    made = [f["id"] for f in findings]
    assert ids(client, "", viewer) == made[::-1]  # newest first
    assert ids(client, "bbox=4.805,52.2,4.825,52.4", viewer) == [made[2], made[1]]
    assert ids(client, "status=open", viewer) == [made[4], made[1], made[0]]
    assert ids(client, "status=in_progress,resolved", viewer) == [made[3], made[2]]
    assert ids(client, "status=in_progress&status=resolved", viewer) == [made[3], made[2]]
    assert ids(client, "category=damage", viewer) == [made[2], made[0]]
    assert ids(client, "category=damage,other&status=open", viewer) == [made[0]]
    assert ids(client, "asset=lamps", viewer) == [made[2]]
    start = findings[1]["created_at"].replace("Z", "+00:00")
    end = findings[3]["created_at"].replace("Z", "+00:00")
    window = f"from={start}&to={end}".replace("+", "%2B")
    assert ids(client, window, viewer) == [made[2], made[1]]


def test_filters_that_cannot_be_used_are_422(client: TestClient, viewer: dict[str, str]) -> None:
    for query in [
        "bbox=1,2,3", "bbox=5,52,4,53", "bbox=nan,1,2,3", "status=closed", "category=graffiti",
        "from=2026-01-01T00:00:00", "to=yesterday", "asset=%00",
    ]:  # fmt: skip
        for path in ("/api/v1/inspections", "/api/v1/inspections/export"):
            assert client.get(f"{path}?{query}", headers=viewer).status_code == 422, (path, query)
    for query in ["limit=0", "limit=1001", "cursor=garbage", "cursor=WzEsMl0"]:
        assert client.get(f"/api/v1/inspections?{query}", headers=viewer).status_code == 422


def cursor_of(created_at: str, last_id: str = "0" * 32) -> str:
    """A cursor as the server makes them, holding any time text."""
    raw = json.dumps([created_at, last_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "moment",
    ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59.999999-05:00", "0001-01-01T00:00:00+23:59"],
)
def test_times_at_the_edge_of_the_calendar_are_422_not_500(
    client: TestClient, viewer: dict[str, str], moment: str
) -> None:
    listing = client.get(f"/api/v1/inspections?cursor={cursor_of(moment)}", headers=viewer)
    assert listing.status_code == 422, listing.text
    assert listing.json()["detail"] == "cursor is not one that this server gave out"
    for name in ("from", "to"):
        for path in ("/api/v1/inspections", "/api/v1/inspections/export"):
            for query in (f"{name}={moment}", f"{name}={moment}&format=csv"):
                response = client.get(f"{path}?{query.replace('+', '%2B')}", headers=viewer)
                assert response.status_code == 422, (path, query, response.text)
                assert response.json()["detail"] == f"{name} is out of range"


def test_times_at_the_edge_of_the_calendar_in_utc_are_usable(
    client: TestClient, viewer: dict[str, str], findings: list[dict[str, Any]]
) -> None:
    first, last = "0001-01-01T00:00:00%2B00:00", "9999-12-31T23:59:59.999999%2B00:00"
    assert len(ids(client, f"from={first}&to={last}", viewer)) == len(findings)
    assert ids(client, f"cursor={cursor_of('0001-01-01T00:00:00+00:00')}", viewer) == []
    newest_first = [f["id"] for f in findings][::-1]
    assert ids(client, f"cursor={cursor_of('9999-12-31T23:59:59+00:00')}", viewer) == newest_first


def test_pages_follow_the_cursor_without_gap_or_repeat(
    client: TestClient, viewer: dict[str, str], findings: list[dict[str, Any]]
) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/api/v1/inspections?{query}", headers=viewer).json()
        seen += [item["id"] for item in page["inspections"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f["id"] for f in findings][::-1]


def test_the_geojson_export_is_a_valid_feature_collection(
    client: TestClient, viewer: dict[str, str], findings: list[dict[str, Any]]
) -> None:
    response = client.get("/api/v1/inspections/export?format=geojson&status=open", headers=viewer)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/geo+json"
    assert response.headers["x-truncated"] == "false"
    collection = response.json()
    assert collection["type"] == "FeatureCollection"
    assert collection["truncated"] is False
    assert len(collection["features"]) == 3
    for feature, finding in zip(
        collection["features"], [findings[4], findings[1], findings[0]], strict=True
    ):
        assert feature["type"] == "Feature"
        assert feature["id"] == finding["id"]
        assert feature["geometry"] == {"type": "Point", "coordinates": finding["location"]}
        assert feature["properties"]["status"] == "open"
        assert feature["properties"]["category"] == finding["category"]
        assert "location" not in feature["properties"]


def test_the_csv_export_neutralises_formulas(
    client: TestClient, inspector: dict[str, str], viewer: dict[str, str]
) -> None:
    dangerous = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rx"]
    for text in dangerous:
        record(client, inspector, description=text, assignee=text)
    record(client, inspector, description='plain, with "quotes"\nand a line break')
    response = client.get("/api/v1/inspections/export?format=csv", headers=viewer)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["description"] for row in table] == [
        'plain, with "quotes"\nand a line break',
        *("'" + t for t in reversed(dangerous)),
    ]
    assert [row["assignee"] for row in table[1:]] == ["'" + t for t in reversed(dangerous)]
    assert float(table[0]["lon"]) == HERE[0]
    assert table[0]["status"] == "open"


def test_an_export_says_when_it_is_truncated(
    client: TestClient,
    inspector: dict[str, str],
    viewer: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(inspections_api, "EXPORT_LIMIT", 2)
    made = [record(client, inspector)["id"] for _ in range(3)]
    geojson = client.get("/api/v1/inspections/export", headers=viewer)
    assert geojson.headers["x-truncated"] == "true"
    assert geojson.json()["truncated"] is True
    assert [f["id"] for f in geojson.json()["features"]] == made[:0:-1]
    csv_export = client.get("/api/v1/inspections/export?format=csv", headers=viewer)
    assert csv_export.headers["x-truncated"] == "true"
    assert len(csv_export.text.strip().splitlines()) == 3


def test_the_real_export_limit_is_ten_thousand() -> None:
    assert inspections_api.EXPORT_LIMIT == 10_000


# -- live ------------------------------------------------------------------------------------


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    running = Live(settings)
    yield running
    running.close()


def test_an_inspection_reaches_a_subscriber_and_enters_when_the_inspector_walks_near(
    live: Live, settings: Settings
) -> None:
    [inspector_secret] = tokens_for(settings, "inspector")
    writer = {"Authorization": f"Bearer {inspector_secret}"}
    here = [4.8952, 52.3702]
    there = [4.8952 + 0.003, 52.3702]  # about 200 m east
    with live.connect() as ws:
        receive(ws, "welcome")
        ws.send(
            json.dumps(
                {"type": "subscribe", "id": "walk", "area": {"center": here, "radius_m": 500},
                 "layers": ["inspections"], "proximity_m": 50, "max_rate_hz": None}
            )
        )  # fmt: skip
        assert receive(ws, "snapshot")["items"] == []
        created = live.http.post(
            "/api/v1/inspections",
            json={"location": [*there, 43.0], "category": "hazard", "description": "Hole"},
            headers=writer,
        )
        assert created.status_code == 201, created.text
        iid = created.json()["id"]
        [item] = receive(ws, "update")["items"]
        assert item["key"] == f"inspection:{iid}"
        assert item["layer"] == "inspections"
        assert item["kind"] == "hazard"
        assert item["data"]["status"] == "open"
        assert item["position"] == pytest.approx([*there, 43.0])
        ws.send(json.dumps({"type": "move", "id": "walk", "center": [there[0] - 0.0003, there[1]]}))
        entered = receive(ws, "enter")  # about 20 m from it now
        assert entered["key"] == f"inspection:{iid}"
        assert 10 < entered["distance_m"] < 30
        started = live.http.patch(
            f"/api/v1/inspections/{iid}", json={"status": "in_progress"}, headers=writer
        )
        assert started.status_code == 200
        assert receive(ws, "update")["items"][0]["data"]["status"] == "in_progress"
        resolved = live.http.patch(
            f"/api/v1/inspections/{iid}",
            json={"status": "resolved", "note": "Filled"},
            headers=writer,
        )
        assert resolved.status_code == 200
        assert receive(ws, "leave")["key"] == f"inspection:{iid}"
        [gone] = receive(ws, "update")["items"]
        assert gone["removed"] is True
