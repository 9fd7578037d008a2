"""``POST /api/v1/align``: a headset's y-up frame, turned and moved by a known amount, is
recovered from point pairs given in ETRS89, in RD New + NAP or as asset features; degenerate
pairs are 422s that say why."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from arserver.config import Settings
from arserver.live.frames import Frame
from arserver.store.alignments import AlignmentRow, alignment_of, alignments_of, store_alignment
from arserver.store.retention import apply_personal_retention
from arserver.store.schema import alignments, asset_features
from tests.arserver.support import auth, engine_of, insert_asset
from tiles.crs import EnuFrame, Transformer

BACKENDS = ("sqlite",)  # the database only holds the features
ORIGIN = (4.7610, 52.3095, 43.5)
YAW = math.radians(37.0)  # the headset's session started facing 37 degrees off north
#: The headset's frame (x right, y up, z backwards) in ENU: a turn about up, then a move.
TO_ENU = np.array(
    [
        [math.cos(YAW), 0.0, -math.sin(YAW)],
        [-math.sin(YAW), 0.0, -math.cos(YAW)],
        [0.0, 1.0, 0.0],
    ]
)  # fmt: skip  (columns: x right, y up, z backwards; forward is the yaw from north)
OFFSET = np.array([3.0, -4.0, 1.2])


def scene(noise_m: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Client points and their ETRS89 lon, lat, h: corners of a street scene around ORIGIN."""
    rng = np.random.default_rng(seed)
    enu = np.array([[0, 0, 0], [12, 3, 0.2], [-5, 9, 1.5], [4, -7, 3.0], [8, 8, 0.0]], float)
    client = (enu - OFFSET) @ TO_ENU  # inverse of enu = TO_ENU @ client + OFFSET
    frame = EnuFrame(*ORIGIN)
    lon, lat, h = frame.to_geodetic(*(enu + rng.normal(0, noise_m, enu.shape)).T)
    return client, np.column_stack([lon, lat, h])


def pairs(client: np.ndarray, world: np.ndarray, crs: str | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for c, w in zip(client, world, strict=True):
        pair: dict[str, Any] = {"client": [float(v) for v in c], "world": [float(v) for v in w]}
        if crs is not None:
            pair["crs"] = crs
        out.append(pair)
    return out


def post(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post("/api/v1/align", json=body, headers=auth(client, "inspector"))


@pytest.mark.parametrize("noise_m", [0.0, 0.01])
def test_a_turned_and_moved_headset_frame_is_recovered(client: TestClient, noise_m: float) -> None:
    points, world = scene(noise_m, seed=4)
    answer = post(client, {"pairs": pairs(points, world), "origin": list(ORIGIN), "up": "y"})
    assert answer.status_code == 200, answer.text
    found = answer.json()
    matrix = np.asarray(found["matrix"])
    assert np.abs(matrix[:3, :3] - TO_ENU).max() < 0.002 + 3 * noise_m / 10
    assert np.abs(matrix[:3, 3] - OFFSET).max() < 0.001 + 3 * noise_m
    assert found["scale"] == 1.0
    assert found["rms_m"] <= 2 * noise_m + 1e-6
    assert len(found["residuals_m"]) == 5
    x, y, z, w = found["quaternion"]
    assert math.isclose(x * x + y * y + z * z + w * w, 1.0, rel_tol=1e-9)
    from_quaternion = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip
    assert np.abs(from_quaternion - matrix[:3, :3]).max() < 1e-9
    assert np.allclose(found["translation"], matrix[:3, 3])
    assert found["warnings"] == []


def test_world_points_in_rd_nap_and_as_asset_features(client: TestClient) -> None:
    points, world = scene()
    rd = Transformer.from_crs("EPSG:4937", "EPSG:7415").transform(*world.T)
    rd_points = np.column_stack([rd[0], rd[1], rd[2]])
    in_rd = post(client, {"pairs": pairs(points, rd_points, "EPSG:7415"), "origin": list(ORIGIN)})
    assert in_rd.status_code == 200, in_rd.text
    assert np.abs(np.asarray(in_rd.json()["matrix"])[:3, 3] - OFFSET).max() < 0.005
    engine = engine_of(client)
    insert_asset(engine, "lamps", public=False)
    with engine.begin() as connection:
        connection.execute(insert(asset_features), [
            {"asset_id": "lamps", "feature_id": f"lamp-{i}", "lon": float(w[0]),
             "lat": float(w[1]), "h": float(w[2]), "west": float(w[0]), "south": float(w[1]),
             "east": float(w[0]), "north": float(w[1])}
            for i, w in enumerate(world)
        ])  # fmt: skip
    by_feature = [
        {"client": [float(v) for v in c], "feature": {"asset": "lamps", "feature": f"lamp-{i}"}}
        for i, c in enumerate(points)
    ]
    answer = post(client, {"pairs": by_feature, "origin": list(ORIGIN)})
    assert answer.status_code == 200, answer.text
    assert np.abs(np.asarray(answer.json()["matrix"])[:3, 3] - OFFSET).max() < 0.001
    missing = post(client, {"pairs": [{**by_feature[0], "feature": {"asset": "lamps",
                                                                     "feature": "nope"}},
                                      *by_feature[1:]]})  # fmt: skip
    assert missing.status_code == 422
    assert "nope" in missing.text


def test_the_default_origin_is_the_centroid_and_the_scale_can_be_free(client: TestClient) -> None:
    points, world = scene()
    answer = post(client, {"pairs": pairs(points * 1.01, world), "free_scale": True}).json()
    assert abs(answer["scale"] - 1 / 1.01) < 1e-6
    centre = world.mean(axis=0)
    assert np.allclose(answer["origin"], centre)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda p: p[:2], "at least 3"),
        (lambda p: [{**q, "client": [float(i), 0.0, 0.0]} for i, q in enumerate(p)], "one line"),
        (lambda p: [p[0], p[0], *p[2:]], "same point"),
        (lambda p: [{**p[0], "crs": "EPSG:7415"}, *p[1:]], "different CRSs"),
        (lambda p: [{**p[0], "world": p[0]["world"][:2]}, *p[1:]], "height"),
        (lambda p: [{"client": [0, 0, 0]}, *p[1:]], "world"),
    ],
)
def test_degenerate_pairs_are_422s_that_say_why(
    client: TestClient, change: Any, named: str
) -> None:
    points, world = scene()
    answer = post(client, {"pairs": change(pairs(points, world))})
    assert answer.status_code == 422, answer.text
    assert named in answer.text


def test_nan_and_the_policy(client: TestClient) -> None:
    points, world = scene()
    body = pairs(points, world)
    text = (
        '{"pairs": [{"client": [NaN, 0, 0], "world": [4.76, 52.3, 43]}'
        + "".join(f', {{"client": {q["client"]}, "world": {q["world"]}}}' for q in body[1:])
        + "]}"
    )
    nan = client.post("/api/v1/align", content=text, headers={
        **auth(client, "viewer"), "Content-Type": "application/json"})  # fmt: skip
    assert nan.status_code == 422
    assert client.post("/api/v1/align", json={"pairs": body}).status_code == 401
    assert client.post("/api/v1/align", json={"pairs": body},
                       headers=auth(client, "ingest")).status_code == 403  # fmt: skip


def test_the_alignment_is_kept_for_its_caller_without_the_pairs(client: TestClient) -> None:
    points, world = scene()
    answer = post(client, {"pairs": pairs(points, world), "origin": list(ORIGIN)})
    assert answer.status_code == 200, answer.text
    found = answer.json()
    made = datetime.fromisoformat(found["expires_at"]) - timedelta(hours=12)
    assert abs((made - datetime.now(UTC)).total_seconds()) < 60
    engine = engine_of(client)
    with engine.connect() as connection:
        (row,) = connection.execute(select(alignments)).mappings()
    assert row["id"] == found["id"]
    assert np.allclose(row["matrix"], found["matrix"], atol=0, rtol=0)
    assert (row["origin_lon"], row["origin_lat"], row["origin_h"]) == ORIGIN
    stored = " ".join(str(v) for v in row.values())
    assert str(float(points[1][0])) not in stored  # the pairs are not kept
    assert str(float(world[1][0])) not in stored


def stored(owner: str, created_at: datetime, number: int) -> AlignmentRow:
    return AlignmentRow(
        id=f"al{number}", owner=owner, created_at=created_at, origin_lon=4.76,
        origin_lat=52.31, origin_h=43.5, matrix=np.eye(4).tolist(), up="y", rms_m=0.01,
    )  # fmt: skip


def test_a_caller_keeps_its_newest_alignments_and_they_expire(client: TestClient) -> None:
    engine = engine_of(client)
    start = datetime.now(UTC) - timedelta(hours=1)  # the server's own retention leaves them
    with engine.begin() as connection:
        for k in range(5):
            store_alignment(connection, stored("me", start + timedelta(minutes=k), k), keep=3)
        store_alignment(connection, stored("other", start, 9), keep=3)
    with engine.connect() as connection:
        mine = [row["id"] for row in alignments_of(connection, ["me"], 10)]
        assert mine == ["al2", "al3", "al4"]
        assert alignment_of(connection, "al4", "other", start) is None
        assert alignment_of(connection, "al4", "me", start + timedelta(minutes=5)) is None
        assert alignment_of(connection, "al4", "me", start)
    settings = Settings(data_dir=Path("unused"), alignment_lifetime_h=12)
    later = start + timedelta(hours=12, minutes=3, seconds=30)  # al2 and al3 are older
    purged = apply_personal_retention(engine, settings, now=later)
    assert purged["alignments"] == 3  # al2, al3 and the other caller's al9
    with engine.connect() as connection:
        assert [row["id"] for row in alignments_of(connection, ["me", "other"], 10)] == ["al4"]


GEOREFERENCING = Path(__file__).resolve().parents[3] / "docs" / "georeferencing.md"


def test_the_worked_example_in_the_docs_gives_the_numbers_it_quotes(client: TestClient) -> None:
    text = GEOREFERENCING.read_text(encoding="utf-8")
    body = json.loads(text.split("/api/v1/align -d '", 1)[1].split("'", 1)[0])
    answer = post(client, body)
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert np.abs(np.asarray(found["quaternion"]) - [0.6984, -0.1107, -0.1107, 0.6984]).max() < 1e-4
    assert abs(found["rms_m"] - 0.0018) < 0.0001
    assert found["warnings"] == []
    frame = Frame.parse({"type": "aligned", "origin": found["origin"], "matrix": found["matrix"]})
    lon, lat, h = Transformer.from_crs("EPSG:7415", "EPSG:4937").transform(
        [121404.0], [487406.0], [1.8]
    )
    assert h is not None
    quoted = "`[1.8999, -0.3002, -6.9583]`"
    assert quoted in text
    assert frame.position(float(lon[0]), float(lat[0]), float(h[0])) == json.loads(quoted[1:-1])
