"""Tile serving: media types, strong ETags and 304, caching, gzip, CORS, HEAD, tokens, no
traversal; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from arserver.store.schema import assets
from arserver.store.tilestore import TileStore
from tests.arserver.support import ASSETS, engine_of, insert_asset, token
from tiles.convert import convert


def publish(
    client: TestClient, tmp_path: Path, asset_id: str, *, public: bool, revision: str = "r1"
) -> None:
    engine = engine_of(client)
    with engine.connect() as connection:
        known = connection.execute(assets.select().where(assets.c.id == asset_id)).first()
    if not known:
        insert_asset(engine, asset_id, public=public)
    built = tmp_path / f"built-{asset_id}-{revision}"
    convert([ASSETS / "parking_zones.geojson"], built)
    store: TileStore = client.app.state.store  # type: ignore[attr-defined]
    store.publish(asset_id, built, revision)


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] in ("sqlite", "postgresql")


def test_public_tileset_and_content_with_types_etags_and_cache_rules(
    client: TestClient, tmp_path: Path
) -> None:
    publish(client, tmp_path, "zones", public=True)
    entry = client.get("/tiles/zones/tileset.json")
    assert entry.status_code == 200
    assert entry.headers["content-type"] == "application/json"
    assert entry.headers["cache-control"] == "no-cache"
    assert entry.headers["etag"].startswith('"')
    uri = entry.json()["root"]["content"]["uri"]
    assert uri == "r1/content/r.glb"
    content = client.get(f"/tiles/zones/{uri}")
    assert content.status_code == 200
    assert content.headers["content-type"] == "model/gltf-binary"
    assert "immutable" in content.headers["cache-control"]
    assert content.content[:4] == b"glTF"


def test_if_none_match_gives_304_and_head_gives_headers_only(
    client: TestClient, tmp_path: Path
) -> None:
    publish(client, tmp_path, "zones", public=True)
    first = client.get("/tiles/zones/tileset.json")
    again = client.get(
        "/tiles/zones/tileset.json", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
    head = client.head("/tiles/zones/r1/content/r.glb")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) > 1000


def test_json_is_gzipped_and_cors_is_open(client: TestClient, tmp_path: Path) -> None:
    publish(client, tmp_path, "zones", public=True)
    response = client.get(
        "/tiles/zones/tileset.json",
        headers={"Accept-Encoding": "gzip", "Origin": "https://viewer.example"},
    )
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["access-control-allow-origin"] == "*"
    assert "etag" in response.headers["access-control-expose-headers"].lower()
    assert json.loads(response.content)["asset"]["version"] == "1.1"


def test_private_tiles_need_a_reading_token_by_header_or_query(
    client: TestClient, tmp_path: Path
) -> None:
    publish(client, tmp_path, "plans", public=False)
    assert client.get("/tiles/plans/tileset.json").status_code == 404  # as if absent
    assert client.get("/tiles/plans/r1/content/r.glb").status_code == 404
    viewer = token(client, "viewer")
    by_header = client.get(
        "/tiles/plans/tileset.json", headers={"Authorization": f"Bearer {viewer}"}
    )
    assert by_header.status_code == 200
    assert by_header.headers["cache-control"] == "no-cache"
    content = client.get(f"/tiles/plans/r1/content/r.glb?access_token={viewer}")
    assert content.status_code == 200
    assert content.headers["cache-control"].startswith("private")
    assert (
        client.get(f"/tiles/plans/tileset.json?access_token={token(client, 'ingest')}").status_code
        == 403
    )
    assert client.get("/tiles/plans/tileset.json?access_token=ars_forged").status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "../../arserver.db",
        "r1/../../../arserver.db",
        "%2e%2e/%2e%2e/arserver.db",
        "r1/content/missing.glb",
        "r1",
    ],
)
def test_no_path_escapes_the_asset_and_missing_files_are_404(
    client: TestClient, tmp_path: Path, path: str
) -> None:
    publish(client, tmp_path, "zones", public=True)
    assert client.get(f"/tiles/zones/{path}").status_code == 404


def test_unknown_assets_are_404(client: TestClient) -> None:
    assert client.get("/tiles/nothing/tileset.json").status_code == 404
    assert client.get("/tiles/bad%20id/tileset.json").status_code == 404


def test_a_new_revision_changes_the_entry_point_and_keeps_old_content(
    client: TestClient, tmp_path: Path
) -> None:
    publish(client, tmp_path, "zones", public=True, revision="r1")
    before = client.get("/tiles/zones/tileset.json")
    publish(client, tmp_path, "zones", public=True, revision="r2")
    after = client.get("/tiles/zones/tileset.json")
    assert after.json()["root"]["content"]["uri"] == "r2/content/r.glb"
    assert after.headers["etag"] != before.headers["etag"]
    assert client.get("/tiles/zones/r1/content/r.glb").status_code == 200


def test_openapi_documents_the_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/healthz", "/readyz", "/tiles/{asset_id}/{path}"} <= set(paths)
