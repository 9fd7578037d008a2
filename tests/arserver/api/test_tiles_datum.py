"""Tilesets in the client's datum: ``?datum=ITRF2020&epoch=2026.9`` gives the same tiles with
the root transform composed with the Helmert matrix, so their content's ECEF positions are
pyproj's transformation of the ETRS89 ones; the epoch is rounded to 0.1 year, caches keep one
answer per datum and epoch, the scene asks each asset for its tileset in that datum."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyproj
import pytest
from fastapi.testclient import TestClient

from arserver.app import create_app
from arserver.config import Settings
from tests.arserver.conftest import TILE_BACKENDS
from tests.arserver.support import ASSETS, auth, run_jobs, upload

BACKENDS = TILE_BACKENDS


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    """One converted public asset for the module (SQLite: the database only says which
    asset is where; the tests only read)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("datum") / "data", embedded_worker=False)
    with TestClient(create_app(settings)) as client:
        asset = upload(client, ASSETS / "parking_zones.geojson", public="true").json()
        run_jobs(client, settings)
        yield client, str(asset["id"])


def root_matrix(document: dict[str, Any]) -> np.ndarray:
    return np.asarray(document["root"]["transform"], dtype=np.float64).reshape(4, 4).T


def local_points(document: dict[str, Any]) -> np.ndarray:
    """The corners of the root's bounding box, in the root's frame (homogeneous, 4 x 8)."""
    box = np.asarray(document["root"]["boundingVolume"]["box"], dtype=np.float64)
    centre, axes = box[:3], box[3:].reshape(3, 3)
    corners = [centre + sx * axes[0] + sy * axes[1] + sz * axes[2]
               for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]  # fmt: skip
    return np.vstack([np.asarray(corners).T, np.ones(8)])


def test_the_root_moves_by_the_helmert_matrix_and_the_content_lands_where_proj_puts_it(
    served: tuple[TestClient, str],
) -> None:
    client, asset = served
    stored = client.get(f"/tiles/{asset}/tileset.json").json()
    moved = client.get(f"/tiles/{asset}/tileset.json?datum=ITRF2020&epoch=2026.9").json()
    assert moved["extras"]["datum"] == "ITRF2020"
    assert moved["extras"]["epoch"] == 2026.9
    assert moved["root"]["content"] == stored["root"]["content"]  # no content changes
    points = local_points(stored)
    etrs89 = root_matrix(stored) @ points
    itrf = root_matrix(moved) @ points
    proj = pyproj.Transformer.from_crs(7930, 9988, always_xy=True)
    expected = proj.transform(*etrs89[:3], np.full(8, 2026.9))[:3]
    assert np.abs(itrf[:3] - np.asarray(expected)).max() < 0.01
    assert 0.9 < np.linalg.norm(itrf[:3, 0] - etrs89[:3, 0]) < 0.96  # about 0.93 m


def test_epochs_are_rounded_and_each_datum_and_epoch_has_its_own_etag(
    served: tuple[TestClient, str],
) -> None:
    client, asset = served
    url = f"/tiles/{asset}/tileset.json"
    plain = client.get(url)
    near = client.get(f"{url}?datum=ITRF2020&epoch=2026.93")
    same = client.get(f"{url}?datum=itrf2020&epoch=2026.88")
    later = client.get(f"{url}?datum=ITRF2020&epoch=2027.5")
    assert near.json()["extras"]["epoch"] == 2026.9
    assert near.json() == same.json()
    assert near.headers["etag"] == same.headers["etag"]
    etags = {plain.headers["etag"], near.headers["etag"], later.headers["etag"]}
    assert len(etags) == 3
    assert near.headers["cache-control"] == "no-cache"
    again = client.get(f"{url}?datum=ITRF2020&epoch=2026.9",
                       headers={"If-None-Match": near.headers["etag"]})  # fmt: skip
    assert again.status_code == 304
    assert client.get(f"{url}?datum=ETRS89").json() == plain.json()
    now = client.get(f"{url}?datum=WGS84").json()["extras"]["epoch"]
    assert 2026.0 <= now <= 2100.0
    assert round(now * 10) == now * 10


def test_unknown_datums_and_epochs_out_of_range_are_refused(served: tuple[TestClient, str]) -> None:
    client, asset = served
    url = f"/tiles/{asset}/tileset.json"
    assert client.get(f"{url}?datum=NAD83").status_code == 422
    assert client.get(f"{url}?datum=ITRF2020&epoch=1850").status_code == 422
    assert client.get(f"{url}?datum=ITRF2020&epoch=nan").status_code == 422


def test_only_the_entry_point_moves(served: tuple[TestClient, str]) -> None:
    client, asset = served
    stored = client.get(f"/tiles/{asset}/tileset.json").json()
    uri = stored["root"]["content"]["uri"]
    plain = client.get(f"/tiles/{asset}/{uri}").content
    passed_on = client.get(f"/tiles/{asset}/{uri}?datum=ITRF2020&epoch=2026.9").content
    assert plain == passed_on  # a client passing the parameters on moves nothing twice


def test_the_scene_asks_each_asset_for_its_tileset_in_the_datum(
    served: tuple[TestClient, str],
) -> None:
    client, asset = served
    viewer = auth(client, "viewer")
    scene = client.get("/tiles/scene/default/tileset.json?datum=ITRF2020&epoch=2026.9",
                       headers=viewer).json()  # fmt: skip
    assert scene["extras"]["datum"] == "ITRF2020"
    (child,) = scene["root"]["children"]
    uri = child["content"]["uri"]
    assert uri == f"/tiles/{asset}/tileset.json?datum=ITRF2020&epoch=2026.9"
    assert "transform" not in scene["root"]  # each asset's own root moves, once
    moved = client.get(uri, headers=viewer).json()
    direct = client.get(f"/tiles/{asset}/tileset.json?datum=ITRF2020&epoch=2026.9").json()
    assert moved == direct


def test_a_tokened_entry_point_in_a_datum_keeps_the_token_in_its_references(
    served: tuple[TestClient, str],
) -> None:
    client, asset = served
    secret = auth(client, "viewer")["Authorization"].split()[1]
    answer = client.get(
        f"/tiles/{asset}/tileset.json?datum=ITRF2020&epoch=2026.9&access_token={secret}"
    )
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "private, no-store"
    assert f"access_token={secret}" in answer.json()["root"]["content"]["uri"]
    assert answer.json()["extras"]["datum"] == "ITRF2020"
