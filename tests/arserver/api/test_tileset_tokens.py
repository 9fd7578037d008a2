"""Tokens for 3D Tiles clients that do not pass a query string on to child requests
(3DTilesRendererJS): a tileset JSON asked for with ``?access_token=`` carries the token in its
relative references; with tiles on local disk and in S3 object storage."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from fastapi.testclient import TestClient

from arserver.config import Settings
from arserver.store.tilestore import TileStore
from tests.arserver.support import ASSETS, engine_of, insert_asset, run_jobs, token, upload

#: SQLite with tiles on disk, and PostgreSQL with tiles in object storage.
BACKENDS = ("sqlite", "s3")

BASE = "http://testserver"


def references(document: dict[str, Any]) -> list[str]:
    """Every content, child tileset and subtree reference of a tileset document."""
    found: list[str] = []
    stack = [document["root"]]
    while stack:
        tile = stack.pop()
        for content in [tile.get("content"), *tile.get("contents", [])]:
            if content is not None:
                found.append(content.get("uri", content.get("url")))
        stack.extend(tile.get("children", []))
    return found


def crawl(client: TestClient, root: str) -> dict[str, Any]:
    """Follow every reference from ``root`` as a client that resolves each against its
    document's URL (so the document's own query string is dropped) and adds nothing; returns
    the answers by path. Every answer must be 200."""
    answers: dict[str, Any] = {}
    queue = deque([urljoin(BASE, root)])
    while queue:
        url = queue.popleft()
        if url in answers:
            continue
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.text[:200])
        answers[url] = response
        if response.headers["content-type"] == "application/json":
            for uri in references(response.json()):
                queue.append(urljoin(url, uri))
    return answers


def stored_content(store: TileStore, asset_id: str) -> set[str]:
    return {
        name for name in store.files(asset_id) if name.endswith((".glb", ".json")) and "/" in name
    }


def test_every_file_of_a_converted_layer_is_reached_with_the_roots_token_alone(
    client: TestClient, settings: Settings
) -> None:
    scan = upload(client, ASSETS / "tree_scan.laz", layer="site", crs="EPSG:7415").json()
    zones = upload(client, ASSETS / "parking_zones.geojson", layer="site").json()
    run_jobs(client, settings)
    viewer = token(client, "viewer")
    answers = crawl(client, f"/tiles/scene/site/tileset.json?access_token={viewer}")
    store: TileStore = client.app.state.store  # type: ignore[attr-defined]
    for asset in (scan, zones):
        reached = {
            urlsplit(url).path.removeprefix(f"/tiles/{asset['id']}/")
            for url in answers
            if urlsplit(url).path.startswith(f"/tiles/{asset['id']}/")
        }
        content = {p for p in stored_content(store, asset["id"]) if p.endswith(".glb")}
        assert len(content) > (5 if asset is scan else 0)
        assert content <= reached, "content files no reference led to"
    for url, response in answers.items():
        if response.headers["content-type"] == "application/json":
            assert parse_qs(urlsplit(url).query) == {"access_token": [viewer]}
            assert response.headers["cache-control"] == "private, no-store"
        else:
            assert response.content[:4] == b"glTF"


def test_a_tokened_tileset_differs_only_in_its_references_and_is_never_stored(
    client: TestClient, settings: Settings
) -> None:
    asset = upload(client, ASSETS / "parking_zones.geojson").json()
    run_jobs(client, settings)
    viewer = token(client, "viewer")
    entry = f"/tiles/{asset['id']}/tileset.json"
    by_header = client.get(entry, headers={"Authorization": f"Bearer {viewer}"})
    store: TileStore = client.app.state.store  # type: ignore[attr-defined]
    assert by_header.content == store.entry_point(asset["id"])
    assert by_header.headers["cache-control"] == "no-cache"
    tokened = client.get(f"{entry}?access_token={viewer}")
    assert tokened.headers["cache-control"] == "private, no-store"
    assert tokened.headers["etag"] != by_header.headers["etag"]
    plain, rewritten = by_header.json(), tokened.json()
    uri = plain["root"]["content"]["uri"]
    assert rewritten["root"]["content"]["uri"] == f"{uri}?access_token={viewer}"
    rewritten["root"]["content"]["uri"] = uri
    assert rewritten == plain
    again = client.get(
        f"{entry}?access_token={viewer}", headers={"If-None-Match": tokened.headers["etag"]}
    )
    assert again.status_code == 304
    head = client.head(f"{entry}?access_token={viewer}")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == tokened.headers["etag"]
    assert head.headers["content-length"] == tokened.headers["content-length"]


def test_another_tokens_tileset_carries_that_token(client: TestClient, settings: Settings) -> None:
    asset = upload(client, ASSETS / "parking_zones.geojson").json()
    run_jobs(client, settings)
    first, second = token(client, "viewer"), token(client, "planner")
    entry = f"/tiles/{asset['id']}/tileset.json"
    one = client.get(f"{entry}?access_token={first}")
    two = client.get(f"{entry}?access_token={second}")
    assert one.json()["root"]["content"]["uri"].endswith(f"access_token={first}")
    assert two.json()["root"]["content"]["uri"].endswith(f"access_token={second}")
    assert one.headers["etag"] != two.headers["etag"]


def test_a_query_parameter_beside_a_header_token_is_not_written_anywhere(
    client: TestClient, settings: Settings
) -> None:
    asset = upload(client, ASSETS / "parking_zones.geojson").json()
    run_jobs(client, settings)
    response = client.get(
        f"/tiles/{asset['id']}/tileset.json?access_token=%3Cscript%3E",
        headers={"Authorization": f"Bearer {token(client, 'viewer')}"},
    )
    assert response.status_code == 200
    assert "script" not in response.text
    assert response.headers["cache-control"] == "no-cache"


def test_child_tilesets_and_their_content_keep_their_own_queries(
    client: TestClient, tmp_path: Path
) -> None:
    """A hand-made tileset with an external child tileset, a reference with a query and a
    fragment, an absolute and a data URI: the relative ones get the token, the others not."""
    insert_asset(engine_of(client), "nested", public=False)
    store: TileStore = client.app.state.store  # type: ignore[attr-defined]
    folder = tmp_path / "nested"
    (folder / "child").mkdir(parents=True)
    glb = (ASSETS / "lamp_post.glb").read_bytes()
    (folder / "a.glb").write_bytes(glb)
    (folder / "child" / "b.glb").write_bytes(glb)
    box = {"box": [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]}
    child = {
        "asset": {"version": "1.1"},
        "geometricError": 1,
        "root": {"boundingVolume": box, "geometricError": 0, "content": {"uri": "b.glb?v=2#x"}},
    }
    (folder / "child" / "tileset.json").write_text(json.dumps(child), encoding="utf-8")
    root = {
        "asset": {"version": "1.1"},
        "geometricError": 10,
        "root": {
            "boundingVolume": box,
            "geometricError": 5,
            "refine": "ADD",
            "content": {"uri": "a.glb"},
            "children": [
                {"boundingVolume": box, "geometricError": 1, "content": {"uri": uri}}
                for uri in (
                    "child/tileset.json",
                    "https://cdn.example/c.glb",
                    "data:model/gltf-binary;base64,AA==",
                )
            ],
        },
    }  # fmt: skip
    (folder / "tileset.json").write_text(json.dumps(root), encoding="utf-8")
    r1 = store.publish("nested", folder)
    viewer = token(client, "viewer")
    entry = client.get(f"/tiles/nested/tileset.json?access_token={viewer}").json()
    uris = references(entry)
    assert f"{r1}/a.glb?access_token={viewer}" in uris
    assert "https://cdn.example/c.glb" in uris
    assert "data:model/gltf-binary;base64,AA==" in uris
    nested = client.get(f"/tiles/nested/{r1}/child/tileset.json?access_token={viewer}").json()
    assert references(nested) == [f"b.glb?v=2&access_token={viewer}#x"]
    ours = [u for u in uris if not u.startswith(("https:", "data:"))]
    for uri in ours:  # each followed by itself: the token it carries suffices
        path = urljoin(f"{BASE}/tiles/nested/tileset.json", uri)
        assert client.get(path).status_code == 200, uri
    assert (
        client.get(urljoin(f"{BASE}/tiles/nested/{r1}/child/", references(nested)[0])).content
        == glb
    )
