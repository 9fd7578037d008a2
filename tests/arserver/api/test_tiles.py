"""Tile serving: media types, strong ETags and 304, caching, gzip, CORS, HEAD, byte ranges,
tokens, no traversal; on SQLite and PostgreSQL, and with tiles in S3 object storage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from arserver.store.schema import assets
from arserver.store.tilestore import TileStore, collect_garbage
from tests.arserver.conftest import TILE_BACKENDS
from tests.arserver.support import ASSETS, engine_of, insert_asset, token
from tiles.convert import convert

BACKENDS = TILE_BACKENDS


def publish(
    client: TestClient, tmp_path: Path, asset_id: str, *, public: bool, source: str = "zones"
) -> str:
    """Convert a GeoJSON file into a new revision of ``asset_id``; the revision's name."""
    engine = engine_of(client)
    with engine.connect() as connection:
        known = connection.execute(assets.select().where(assets.c.id == asset_id)).first()
    if not known:
        insert_asset(engine, asset_id, public=public)
    built = tmp_path / f"built-{asset_id}-{source}"
    files = {"zones": "parking_zones.geojson", "pipes": "cables_pipes.geojson"}
    convert([ASSETS / files[source]], built)
    store: TileStore = client.app.state.store  # type: ignore[attr-defined]
    return store.publish(asset_id, built)


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] in ("sqlite", "postgresql")


def test_public_tileset_and_content_with_types_etags_and_cache_rules(
    client: TestClient, tmp_path: Path
) -> None:
    revision = publish(client, tmp_path, "zones", public=True)
    entry = client.get("/tiles/zones/tileset.json")
    assert entry.status_code == 200
    assert entry.headers["content-type"] == "application/json"
    assert entry.headers["cache-control"] == "no-cache"
    assert entry.headers["etag"].startswith('"')
    uri = entry.json()["root"]["content"]["uri"]
    assert uri == f"{revision}/content/r.glb"
    content = client.get(f"/tiles/zones/{uri}")
    assert content.status_code == 200
    assert content.headers["content-type"] == "model/gltf-binary"
    assert "immutable" in content.headers["cache-control"]
    assert content.content[:4] == b"glTF"


def test_if_none_match_gives_304_and_head_gives_headers_only(
    client: TestClient, tmp_path: Path
) -> None:
    revision = publish(client, tmp_path, "zones", public=True)
    first = client.get("/tiles/zones/tileset.json")
    again = client.get(
        "/tiles/zones/tileset.json", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
    head = client.head(f"/tiles/zones/{revision}/content/r.glb")
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
    revision = publish(client, tmp_path, "plans", public=False)
    assert client.get("/tiles/plans/tileset.json").status_code == 404  # as if absent
    assert client.get(f"/tiles/plans/{revision}/content/r.glb").status_code == 404
    viewer = token(client, "viewer")
    by_header = client.get(
        "/tiles/plans/tileset.json", headers={"Authorization": f"Bearer {viewer}"}
    )
    assert by_header.status_code == 200
    assert by_header.headers["cache-control"] == "no-cache"
    content = client.get(f"/tiles/plans/{revision}/content/r.glb?access_token={viewer}")
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
        "REV/../../../arserver.db",
        "%2e%2e/%2e%2e/arserver.db",
        "REV/content/missing.glb",
        "REV",
        "REV/content/r.glb%00",
        "",
    ],
)
def test_no_path_escapes_the_asset_and_missing_files_are_404(
    client: TestClient, tmp_path: Path, path: str
) -> None:
    revision = publish(client, tmp_path, "zones", public=True)
    answer = client.get(f"/tiles/zones/{path.replace('REV', revision)}")
    assert answer.status_code == 404
    assert "8333" not in answer.text
    assert "s3" not in answer.text.lower()


def test_unknown_assets_are_404(client: TestClient) -> None:
    assert client.get("/tiles/nothing/tileset.json").status_code == 404
    assert client.get("/tiles/bad%20id/tileset.json").status_code == 404


def test_a_new_revision_changes_the_entry_point_and_keeps_old_content(
    client: TestClient, tmp_path: Path
) -> None:
    first = publish(client, tmp_path, "zones", public=True)
    before = client.get("/tiles/zones/tileset.json")
    second = publish(client, tmp_path, "zones", public=True, source="pipes")
    assert second != first
    after = client.get("/tiles/zones/tileset.json")
    assert after.json()["root"]["content"]["uri"].startswith(f"{second}/")
    assert after.headers["etag"] != before.headers["etag"]
    old = before.json()["root"]["content"]["uri"]
    assert client.get(f"/tiles/zones/{old}").status_code == 200
    assert publish(client, tmp_path, "zones", public=True, source="pipes") == second  # same content


def test_openapi_documents_the_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/healthz", "/readyz", "/tiles/{asset_id}/{path}"} <= set(paths)


def test_a_byte_range_is_a_206_and_one_past_the_end_a_416(
    client: TestClient, tmp_path: Path
) -> None:
    revision = publish(client, tmp_path, "zones", public=True)
    url = f"/tiles/zones/{revision}/content/r.glb"
    whole = client.get(url, headers={"Accept-Encoding": "identity"}).content
    size = len(whole)
    head = client.get(url, headers={"Range": "bytes=0-3", "Accept-Encoding": "identity"})
    assert head.status_code == 206
    assert head.content == b"glTF"
    assert head.headers["content-range"] == f"bytes 0-3/{size}"
    tail = client.get(url, headers={"Range": "bytes=-8", "Accept-Encoding": "identity"})
    assert (tail.status_code, tail.content) == (206, whole[-8:])
    middle = client.get(url, headers={"Range": "bytes=12-", "Accept-Encoding": "identity"})
    assert (middle.status_code, middle.content) == (206, whole[12:])
    past = client.get(url, headers={"Range": f"bytes={size}-", "Accept-Encoding": "identity"})
    assert past.status_code == 416


def test_garbage_collection_keeps_what_entry_points_name_and_recent_revisions(
    client: TestClient, tmp_path: Path
) -> None:
    store: TileStore = client.app.state.store  # type: ignore[attr-defined]
    old = publish(client, tmp_path, "zones", public=True)
    current = publish(client, tmp_path, "zones", public=True, source="pipes")
    publish(client, tmp_path, "gone", public=True)  # its asset row is deleted below
    assert {r.name for r in store.revisions("zones")} == {old, current}
    now = datetime.now(UTC)
    young = collect_garbage(store, {"zones"}, timedelta(hours=1), now)
    assert young.revisions == []
    assert young.assets == []
    report = collect_garbage(store, {"zones"}, timedelta(0), now + timedelta(seconds=5))
    assert [r.name for r in report.revisions] == [old]
    assert report.assets == ["gone"]
    assert {r.name for r in store.revisions("zones")} == {current}
    assert store.assets() == ["zones"]
    assert client.get("/tiles/zones/tileset.json").status_code == 200
    uri = client.get("/tiles/zones/tileset.json").json()["root"]["content"]["uri"]
    assert client.get(f"/tiles/zones/{uri}").status_code == 200
