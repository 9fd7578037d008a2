"""Publishing an asset indexes its features: the rows of ``asset_features`` come from the
tileset's features.json (each feature at its ``point``, on the feature itself; at its
``center`` in files that have no points) in the transaction that makes the asset ready, are
replaced by a re-conversion, go with the asset, and place findings through ``resolve_place``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select

from arserver.config import Settings
from arserver.services.assets import AssetService
from arserver.services.checks import storable_text
from arserver.services.feature_index import read_feature_index
from arserver.services.places import resolve_place
from arserver.store import jobs as queue
from arserver.store.schema import asset_features, assets
from arserver.store.tilestore.local import LocalTileStore
from tests.arserver.support import ASSETS, auth, engine_of, insert_asset, run_jobs, upload
from tiles.crs import Transformer

if TYPE_CHECKING:
    from tiles.convert import ConversionSummary

RD_CRS = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::28992"}}


def square(x: float, y: float) -> dict[str, Any]:
    ring = [[x, y], [x + 10, y], [x + 10, y + 10], [x, y + 10], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


def rows_of(engine: Engine, asset_id: str) -> dict[str, tuple[float, float, float]]:
    with engine.connect() as connection:
        found = connection.execute(
            select(
                asset_features.c.feature_id,
                asset_features.c.lon,
                asset_features.c.lat,
                asset_features.c.h,
            ).where(asset_features.c.asset_id == asset_id)
        ).all()
    return {row.feature_id: (row.lon, row.lat, row.h) for row in found}


def published_features(
    settings: Settings, asset_id: str, key: str = "point"
) -> dict[str, list[float]]:
    """The positions (``key``: point or center) in the features.json of the asset's current
    revision, as the tile store holds it."""
    entry = json.loads((settings.data_dir / "tiles" / asset_id / "tileset.json").read_text())
    revision = entry["root"]["content"]["uri"].split("/")[0]
    path = settings.data_dir / "tiles" / asset_id / revision / "features.json"
    return {f["id"]: f[key] for f in json.loads(path.read_text())["features"]}


def rd_nap(position: tuple[float, ...] | list[float]) -> tuple[float, float, float]:
    """RD New x, y and NAP height of an ETRS89 lon, lat, h position."""
    x, y, nap = Transformer.from_crs("EPSG:4937", "EPSG:7415").transform(
        [position[0]], [position[1]], [position[2]]
    )
    assert nap is not None
    return float(x[0]), float(y[0]), float(nap[0])


def converted(client: TestClient, settings: Settings, path: Path, **fields: str) -> str:
    response = upload(client, path, public="true", **fields)
    assert response.status_code == 202, response.text
    run_jobs(client, settings)
    asset_id: str = response.json()["id"]
    asset = client.get(f"/api/v1/assets/{asset_id}", headers=auth(client, "viewer")).json()
    assert asset["status"] == "ready", asset
    return asset_id


# -- through the conversion job ------------------------------------------------------------


def test_a_published_geojson_has_its_features_at_their_points(
    client: TestClient, settings: Settings
) -> None:
    asset_id = converted(client, settings, ASSETS / "parking_zones.geojson")
    rows = rows_of(engine_of(client), asset_id)
    listed = published_features(settings, asset_id)
    assert set(rows) == set(listed) == {f"zone-{k}" for k in range(1, len(listed) + 1)}
    for feature_id, point in listed.items():
        assert rows[feature_id] == pytest.approx(tuple(point), abs=1e-9)
    # zone-1: 111750..111810 x 481120..481145 (RD New), from -3.6 to -3.45 m NAP: its point is
    # on its top or bottom face over the middle.
    x, y, nap = rd_nap(rows["zone-1"])
    assert (x, y) == pytest.approx((111_780.0, 481_132.5), abs=0.01)
    assert min(abs(nap + 3.6), abs(nap + 3.45)) < 0.005


def test_a_finding_on_an_l_shaped_cable_is_placed_on_the_cable(
    client: TestClient, settings: Settings
) -> None:
    asset_id = converted(client, settings, ASSETS / "cables_pipes.geojson")
    with engine_of(client).connect() as connection:
        place = resolve_place(
            connection, location=None, crs=None, asset_id=asset_id, feature_id="utility-3",
            caller=None, extent=None,
        )  # fmt: skip
    # utility-3 runs 111745,481100 -> 111830,481100 -> 111830,481180 (RD New), its axis at
    # NAP -4.3, 50 mm thick: the finding is on its first leg, beside the box's centre.
    lon, lat, h = place.position
    assert h is not None
    x, y, nap = rd_nap((lon, lat, h))
    assert 111_745.0 <= x <= 111_830.0
    assert abs(y - 481_100.0) <= 0.025 + 0.01
    assert abs(nap + 4.3) <= 0.025 + 0.01
    center = rd_nap(published_features(settings, asset_id, "center")["utility-3"])
    assert abs(center[1] - 481_100.0) > 39.0  # where the centre of its box would have put it


def test_resolve_place_puts_a_finding_on_a_feature_at_its_position(
    client: TestClient, settings: Settings
) -> None:
    asset_id = converted(client, settings, ASSETS / "buildings.city.json")
    feature_id = "NL.IMBAG.Pand.0362100000001-0"
    with engine_of(client).connect() as connection:
        place = resolve_place(
            connection, location=None, crs=None, asset_id=asset_id, feature_id=feature_id,
            caller=None, extent=None,
        )  # fmt: skip
    assert (place.asset_id, place.feature_id) == (asset_id, feature_id)
    center = published_features(settings, asset_id)[feature_id]
    assert place.position == pytest.approx(tuple(center), abs=1e-9)


def test_a_reconversion_replaces_the_features_of_the_earlier_revision(
    client: TestClient, settings: Settings
) -> None:
    engine = engine_of(client)
    asset_id = converted(client, settings, ASSETS / "parking_zones.geojson")
    assert any(f.startswith("zone-") for f in rows_of(engine, asset_id))
    service = AssetService(engine, settings.data_dir, LocalTileStore(settings.data_dir / "tiles"))
    asset = service.get(asset_id)
    assert asset is not None
    shutil.copyfile(ASSETS / "cables_pipes.geojson", service.source_path(asset))
    with engine.begin() as connection:
        queue.enqueue(connection, asset_id)
    run_jobs(client, settings)
    rows = rows_of(engine, asset_id)
    assert rows
    assert all(f.startswith("utility-") for f in rows)
    assert set(rows) == set(published_features(settings, asset_id))


def test_deleting_an_asset_removes_its_features(client: TestClient, settings: Settings) -> None:
    engine = engine_of(client)
    kept = converted(client, settings, ASSETS / "cables_pipes.geojson")
    gone = converted(client, settings, ASSETS / "parking_zones.geojson")
    response = client.delete(f"/api/v1/assets/{gone}", headers=auth(client, "gis"))
    assert response.status_code == 204
    assert rows_of(engine, gone) == {}
    assert rows_of(engine, kept)


def test_the_database_cascades_an_asset_row_deleted_to_its_features(
    client: TestClient, settings: Settings
) -> None:
    engine = engine_of(client)
    asset_id = converted(client, settings, ASSETS / "parking_zones.geojson")
    with engine.begin() as connection:
        connection.execute(delete(assets).where(assets.c.id == asset_id))
    assert rows_of(engine, asset_id) == {}


def test_hostile_ids_are_stored_verbatim_and_unstorable_ones_skipped(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    ids = ["<script>alert(1)</script>", "'; DROP TABLE asset_features; --", "x" * 200]
    unstorable = ["y" * 201, "nul\u0000inside"]
    features = [
        {
            "type": "Feature",
            "id": feature_id,
            "properties": {"height": 2.0},
            "geometry": square(121_400.0 + 20 * k, 487_400.0),
        }
        for k, feature_id in enumerate(ids + unstorable)
    ]
    path = tmp_path / "hostile.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": RD_CRS, "features": features}))
    asset_id = converted(client, settings, path)
    assert set(rows_of(engine_of(client), asset_id)) == set(ids)


def test_a_failed_conversion_indexes_nothing(client: TestClient, settings: Settings) -> None:
    response = upload(client, ASSETS / "lamp_post.glb")  # no CRS and no origin: it fails
    run_jobs(client, settings)
    asset_id = response.json()["id"]
    asset = client.get(f"/api/v1/assets/{asset_id}", headers=auth(client, "viewer")).json()
    assert asset["status"] == "failed"
    assert rows_of(engine_of(client), asset_id) == {}


# -- the publication step with a given features.json ---------------------------------------

SUMMARY = cast("ConversionSummary", {"wgs84_bbox": [4.75, 52.31, 4.76, 52.32]})


def publish(engine: Engine, settings: Settings, features: bytes | None) -> str:
    """Publish a hand-made tileset (with ``features`` as its features.json, if any) for a new
    asset that is being converted; returns its id."""
    insert_asset(engine, "a1", status="processing", public=True)
    folder = settings.data_dir / "work" / "j1" / "tileset"
    folder.mkdir(parents=True)
    root = {"boundingVolume": {"box": [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]}, "geometricError": 0}
    (folder / "tileset.json").write_text(json.dumps({"asset": {"version": "1.1"}, "root": root}))
    if features is not None:
        (folder / "features.json").write_bytes(features)
    service = AssetService(engine, settings.data_dir, LocalTileStore(settings.data_dir / "tiles"))
    asset = service.get("a1")
    assert asset is not None
    service.publish_tiles(asset, folder, SUMMARY)
    published = service.get("a1")
    assert published is not None
    assert published["status"] == "ready"
    return "a1"


def entry(feature_id: Any, center: Any = (4.755, 52.315, 43.2)) -> dict[str, Any]:
    """An entry as files written before there were points have it: a ``center`` only."""
    return {"id": feature_id, "center": list(center), "bbox": [4.75, 52.31, 4.76, 52.32, 40, 45]}


def test_the_point_is_the_position_and_the_center_only_stands_in_for_a_missing_one(
    engine: Engine, settings: Settings
) -> None:
    both = {**entry("both", (4.755, 52.315, 43.2)), "point": [4.751, 52.312, 41.0]}
    old = entry("old", (4.756, 52.316, 44.0))
    broken = {**entry("broken point"), "point": [4.751, "52.312", 41.0]}
    asset_id = publish(engine, settings, document(both, old, broken))
    rows = rows_of(engine, asset_id)
    assert rows == {
        "both": pytest.approx((4.751, 52.312, 41.0)),
        "old": pytest.approx((4.756, 52.316, 44.0)),
    }


def document(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"features": list(entries)}).encode()


@pytest.mark.parametrize(
    "features",
    [
        None,
        b"",
        b"not json at all",
        b'{"features": [{"id": "a", "center": [4.7, 52.3, 40.0], "bbox": [',  # truncated
        b'\xff\xfe{"features": []}',
        b"[1, 2, 3]",
        b'{"features": {"id": "a"}}',
        b'{"features": "a"}',
        b'{"features": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
        b'{"features": [{"id": "a", "center": [1' + b"0" * 400 + b', 52.3, 0.0]}]}',
        b'{"other": ' + b"[" * 100_000 + b"]" * 100_000 + b', "features": [{"id": "a"',
    ],
    ids=[
        "missing", "empty", "not json", "truncated", "not utf-8", "a list", "features an object",
        "features text", "deeply nested", "an integer no double holds",
        "truncated after deep nesting",
    ],
)  # fmt: skip
def test_a_missing_or_malformed_features_file_publishes_without_features(
    engine: Engine, settings: Settings, features: bytes | None
) -> None:
    asset_id = publish(engine, settings, features)
    assert rows_of(engine, asset_id) == {}


def test_unusable_entries_are_skipped_and_the_first_of_an_id_kept(
    engine: Engine, settings: Settings
) -> None:
    good = [entry("kerb-1", (4.751, 52.311, 40.5)), entry("kerb-2"), entry("z" * 200)]
    bad = [
        entry("kerb-1", (5.0, 53.0, 1.0)),  # repeated: the first stays
        entry(17),
        entry(""),
        entry("z" * 201),
        entry("lone \ud800"),
        entry("nul \u0000"),
        entry("far", (181.0, 52.0, 0.0)),
        entry("flipped", (4.7, -91.0, 0.0)),
        entry("deep", (4.7, 52.3, -200_000.0)),
        entry("short", (4.7, 52.3)),
        entry("texts", ("4.7", "52.3", "0")),
        entry("bools", (True, False, True)),
        {"center": [4.7, 52.3, 0.0]},
        {"id": "nested", "center": [[[[[4.7]]]], 52.3, 0.0]},
        {"id": "long", "center": [4.7, 52.3, 0.0, *range(100_000)]},
        {"id": "wide", "center": [4.7, 52.3, 0.0], **{f"k{k}": k for k in range(100)}},
        "not an object",
    ]
    text = json.dumps({"features": good[:1] + bad + good[1:]})
    asset_id = publish(engine, settings, text.encode())
    rows = rows_of(engine, asset_id)
    # The parser reads an escaped lone surrogate as "?": it never reaches the database as one.
    assert set(rows) - {"lone ?"} == {"kerb-1", "kerb-2", "z" * 200}
    assert all(storable_text(feature_id) for feature_id in rows)
    assert rows["kerb-1"] == pytest.approx((4.751, 52.311, 40.5))


def test_publication_replaces_earlier_rows_in_its_transaction(
    engine: Engine, settings: Settings
) -> None:
    asset_id = publish(engine, settings, document(entry("old")))
    service = AssetService(engine, settings.data_dir, LocalTileStore(settings.data_dir / "tiles"))
    folder = settings.data_dir / "work" / "j2" / "tileset"
    (revision,) = service.tiles.revisions(asset_id)
    shutil.copytree(settings.data_dir / "tiles" / asset_id / revision.name, folder)
    (folder / "features.json").write_bytes(document(*(entry(f"n{k}") for k in range(5000))))
    asset = service.get(asset_id)
    assert asset is not None
    service.publish_tiles(asset, folder, SUMMARY)
    rows = rows_of(engine, asset_id)
    assert len(rows) == 5000
    assert "old" not in rows


def test_a_feature_file_is_read_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "features.json"
    path.write_bytes(document(entry("b"), entry("a"), entry("c")))
    index = read_feature_index(path)
    assert [f.feature_id for f in index.features] == ["b", "a", "c"]
    assert index.skipped == 0
