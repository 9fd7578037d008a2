"""Uploading assets and following their conversion, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select

from arserver.app import create_app
from arserver.config import Settings
from arserver.jobs.worker import Worker
from arserver.store.schema import assets, jobs
from tests.arserver.conftest import TILE_BACKENDS
from tests.arserver.support import (
    ASSETS,
    assert_names_no_server_path,
    auth,
    engine_of,
    failed_asset,
    run_jobs,
    stored_files,
    upload,
)
from tests.support import wait_until
from tests.tiles.support import bench_with_textures, blank_png, lying_header

BACKENDS = TILE_BACKENDS


def counts(client: TestClient) -> tuple[int, int]:
    with engine_of(client).connect() as connection:
        return (
            connection.execute(select(func.count()).select_from(assets)).scalar_one(),
            connection.execute(select(func.count()).select_from(jobs)).scalar_one(),
        )


def test_upload_is_queued_then_converted_and_served(client: TestClient, settings: Settings) -> None:
    response = upload(
        client, ASSETS / "parking_zones.geojson", name="Zones", layer="parking", public="true"
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["status"], body["progress"], body["tileset"]) == ("queued", 0.0, None)
    run_jobs(client, settings)
    ready = client.get(f"/api/v1/assets/{body['id']}").json()
    assert ready["status"] == "ready"
    assert ready["progress"] == 1.0
    assert ready["tileset"] == f"/tiles/{body['id']}/tileset.json"
    west, south, east, north = ready["bbox"]
    assert 4.7 < west < east < 4.8
    assert 52.3 < south < north < 52.4
    tileset = client.get(ready["tileset"]).json()
    assert tileset["asset"]["extras"]["arserver"]["accuracy_m"] == pytest.approx(0.001)
    uri = tileset["root"]["content"]["uri"]
    assert client.get(f"/tiles/{body['id']}/{uri}").status_code == 200


def test_a_local_model_is_placed_by_its_origin(client: TestClient, settings: Settings) -> None:
    response = upload(client, ASSETS / "lamp_post.glb", origin="4.7610,52.3095,39.6", heading="30")
    assert response.status_code == 202, response.text
    run_jobs(client, settings)
    ready = client.get(
        f"/api/v1/assets/{response.json()['id']}", headers=auth(client, "viewer")
    ).json()
    assert ready["status"] == "ready", ready["error"]
    assert ready["origin"] == [4.761, 52.3095, 39.6]


@pytest.mark.parametrize(
    ("name", "content", "fields", "fragment"),
    [
        ("broken.glb", b"glTF" + bytes(64), {"origin": "5,52,40"}, "cannot read the model"),
        ("lamp.glb", None, {}, "--origin LON,LAT,H"),
    ],
)
def test_a_failed_conversion_says_why(
    client: TestClient,
    settings: Settings,
    tmp_path: Path,
    name: str,
    content: bytes | None,
    fields: dict[str, str],
    fragment: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(content if content is not None else (ASSETS / "lamp_post.glb").read_bytes())
    response = upload(client, path, **fields)
    assert response.status_code == 202
    run_jobs(client, settings)
    failed = client.get(
        f"/api/v1/assets/{response.json()['id']}", headers=auth(client, "viewer")
    ).json()
    assert failed["status"] == "failed"
    assert fragment in failed["error"]
    assert failed["tileset"] is None
    assert_names_no_server_path(failed["error"], settings)


@pytest.mark.parametrize("kind", ["texture", "points"])
def test_decompression_bombs_fail_at_once_within_a_small_memory_limit(
    settings: Settings, tmp_path: Path, kind: str
) -> None:
    """A GLB with a 30,000 x 30,000 texture (3.6 GB decoded) and a LAZ whose header claims
    three billion points, converted with 1 GiB of memory: the job fails with the limit named,
    not by running out of memory."""
    if kind == "texture":
        path = tmp_path / "bench.glb"
        path.write_bytes(bench_with_textures(blank_png(30_000, 30_000)))
        fields = {"origin": "4.761,52.3095,39.6"}
        fragment = "texture '#0' has more pixels than the limit of 67,108,864 for one texture"
    else:
        path = lying_header(tmp_path / "scan.laz", 3_000_000_000, compress=True)
        fields = {"crs": "EPSG:7415"}
        fragment = "the header claims 3,000,000,000 points, more than the limit of 1,000,000,000"
    limited = settings.model_copy(update={"job_memory_mib": 1024})
    with TestClient(create_app(limited)) as client:
        failed = failed_asset(client, limited, path, **fields)
    assert failed["error"].startswith(f"{path.name}: {fragment}"), failed["error"]
    assert_names_no_server_path(failed["error"], limited)


@pytest.mark.parametrize(
    ("fields", "status", "fragment"),
    [
        ({"crs": "EPSG:99999"}, 422, "unknown CRS"),
        ({"origin": "north,east"}, 422, "origin must be"),
        ({"lifecycle": "imagined"}, 422, "lifecycle must be"),
        ({"heading": "west"}, 422, "heading must be"),
        ({"heading": "nan"}, 422, "heading must be"),
        ({"heading": "-inf"}, 422, "heading must be"),
        ({"heading": "1e400"}, 422, "heading must be"),
        ({"name": "Zones\x00"}, 422, "name must be"),
        ({"layer": "\x00"}, 422, "layer must be"),
    ],
)
def test_bad_metadata_is_refused_and_nothing_is_stored(
    client: TestClient, settings: Settings, fields: dict[str, str], status: int, fragment: str
) -> None:
    response = upload(client, ASSETS / "parking_zones.geojson", **fields)
    assert response.status_code == status
    assert fragment in response.json()["detail"]
    assert counts(client) == (0, 0)
    assert not (settings.data_dir / "uploads").exists() or not any(
        (settings.data_dir / "uploads").iterdir()
    )


def test_empty_and_missing_files_are_refused(client: TestClient, tmp_path: Path) -> None:
    empty = tmp_path / "empty.geojson"
    empty.write_bytes(b"")
    assert upload(client, empty).status_code == 422
    no_file = client.post("/api/v1/assets", data={"name": "x"}, headers=auth(client))
    assert no_file.status_code == 422
    assert counts(client) == (0, 0)


def test_uploads_over_the_limit_are_refused(settings: Settings, tmp_path: Path) -> None:
    small = settings.model_copy(update={"max_upload_mib": 1})
    big = tmp_path / "big.xyz"
    big.write_bytes(b"1 2 3\n" * 400_000)  # 2.4 MB
    with TestClient(create_app(small)) as client:
        response = upload(client, big, crs="EPSG:7415")
        assert response.status_code == 413
        assert counts(client) == (0, 0)


def test_only_gis_and_admin_may_upload(client: TestClient) -> None:
    assert upload(client, ASSETS / "parking_zones.geojson", role="viewer").status_code == 403
    with (ASSETS / "parking_zones.geojson").open("rb") as handle:
        anonymous = client.post("/api/v1/assets", files={"file": ("z.geojson", handle)})
    assert anonymous.status_code == 401
    assert counts(client) == (0, 0)


def test_list_filters_by_bbox_and_layer_and_hides_private_assets(
    client: TestClient, settings: Settings
) -> None:
    public = upload(client, ASSETS / "parking_zones.geojson", layer="parking", public="true").json()
    private = upload(client, ASSETS / "cables_pipes.geojson", layer="utilities").json()
    run_jobs(client, settings)
    viewer = auth(client, "viewer")
    everything = client.get("/api/v1/assets", headers=viewer).json()["assets"]
    assert {a["id"] for a in everything} == {public["id"], private["id"]}
    schiphol = client.get("/api/v1/assets?bbox=4.7,52.3,4.8,52.4", headers=viewer).json()["assets"]
    assert len(schiphol) == 2
    assert (
        client.get("/api/v1/assets?bbox=5.6,50.8,5.7,50.9", headers=viewer).json()["assets"] == []
    )
    utilities = client.get("/api/v1/assets?layer=utilities", headers=viewer).json()["assets"]
    assert [a["id"] for a in utilities] == [private["id"]]
    anonymous = client.get("/api/v1/assets").json()["assets"]
    assert [a["id"] for a in anonymous] == [public["id"]]
    assert client.get(f"/api/v1/assets/{private['id']}").status_code == 404  # as if absent


@pytest.mark.parametrize(
    ("limits", "fragment"),
    [({"job_timeout_s": 0.05}, "took longer than"), ({"job_memory_mib": 64}, "crashed")],
)
def test_a_runaway_conversion_is_stopped_by_its_limits(
    settings: Settings, limits: dict[str, Any], fragment: str
) -> None:
    limited = settings.model_copy(update=limits)
    with TestClient(create_app(limited)) as client:
        response = upload(client, ASSETS / "parking_zones.geojson")
        run_jobs(client, limited)
        failed = client.get(
            f"/api/v1/assets/{response.json()['id']}", headers=auth(client, "viewer")
        ).json()
    assert failed["status"] == "failed"
    assert fragment in failed["error"]
    assert_names_no_server_path(failed["error"], limited)


def test_the_embedded_worker_converts_uploads_by_itself(settings: Settings) -> None:
    embedded = settings.model_copy(update={"embedded_worker": True})
    with TestClient(create_app(embedded)) as client:
        asset_id = upload(client, ASSETS / "parking_zones.geojson", public="true").json()["id"]

        def converted() -> bool:
            state = client.get(f"/api/v1/assets/{asset_id}").json()
            assert state["status"] in ("queued", "ready", "processing"), state
            return bool(state["status"] == "ready")

        wait_until(converted, 60, "the embedded worker converting the upload")


def test_metadata_changes_and_deletion_remove_everything(
    client: TestClient, settings: Settings
) -> None:
    asset_id = upload(client, ASSETS / "parking_zones.geojson").json()["id"]
    run_jobs(client, settings)
    gis = auth(client)
    changed = client.patch(
        f"/api/v1/assets/{asset_id}", json={"lifecycle": "planned", "public": True}, headers=gis
    )
    assert changed.status_code == 200
    assert (changed.json()["lifecycle"], changed.json()["public"]) == ("planned", True)
    assert (
        client.patch(
            f"/api/v1/assets/{asset_id}", json={"crs": "EPSG:4326"}, headers=gis
        ).status_code
        == 422
    )
    assert (
        client.patch(
            f"/api/v1/assets/{asset_id}", json={"public": False}, headers=auth(client, "viewer")
        ).status_code
        == 403
    )
    assert client.get(f"/tiles/{asset_id}/tileset.json").status_code == 200
    assert client.delete(f"/api/v1/assets/{asset_id}", headers=gis).status_code == 204
    assert client.get(f"/api/v1/assets/{asset_id}", headers=gis).status_code == 404
    assert client.get(f"/tiles/{asset_id}/tileset.json").status_code == 404
    assert stored_files(settings, asset_id) == []
    assert not (settings.data_dir / "uploads" / asset_id).exists()
    assert counts(client) == (0, 0)
    assert client.delete(f"/api/v1/assets/{asset_id}", headers=gis).status_code == 404


def test_scene_tileset_references_every_ready_asset_of_a_layer(
    client: TestClient, settings: Settings
) -> None:
    zones = upload(client, ASSETS / "parking_zones.geojson", layer="schiphol", public="true").json()
    pipes = upload(client, ASSETS / "cables_pipes.geojson", layer="schiphol").json()
    upload(client, ASSETS / "buildings.city.json", layer="elsewhere", public="true")
    run_jobs(client, settings)
    anonymous = client.get("/tiles/scene/schiphol/tileset.json").json()
    assert [c["content"]["uri"] for c in anonymous["root"]["children"]] == [
        f"/tiles/{zones['id']}/tileset.json"
    ]
    viewer = auth(client, "viewer")
    scene = client.get("/tiles/scene/schiphol/tileset.json", headers=viewer)
    assert scene.headers["content-type"] == "application/json"
    uris = [c["content"]["uri"] for c in scene.json()["root"]["children"]]
    assert uris == [f"/tiles/{zones['id']}/tileset.json", f"/tiles/{pipes['id']}/tileset.json"]
    named = [c["extras"] for c in scene.json()["root"]["children"]]
    assert named == [
        {"asset": zones["id"], "name": "parking_zones.geojson", "lifecycle": "existing"},
        {"asset": pipes["id"], "name": "cables_pipes.geojson", "lifecycle": "existing"},
    ]
    west, south, east, north, low, high = scene.json()["root"]["boundingVolume"]["region"]
    assert 0.0829 < west < east < 0.0831  # radians: about 4.75 deg east
    assert 0.9129 < south < north < 0.9132  # about 52.32 deg north
    assert 30.0 < low < high < 60.0
    for uri in uris:  # every reference resolves for the same caller
        assert client.get(uri, headers=viewer).status_code == 200
    again = client.get(
        "/tiles/scene/schiphol/tileset.json",
        headers={**viewer, "If-None-Match": scene.headers["etag"]},
    )
    assert again.status_code == 304
    empty = client.get("/tiles/scene/nothing/tileset.json").json()
    assert empty["root"]["children"] == []


def test_metrics_count_requests_and_jobs(client: TestClient, settings: Settings) -> None:
    upload(client, ASSETS / "parking_zones.geojson")
    run_jobs(client, settings)
    client.get("/healthz")
    text = client.get("/metrics", headers=auth(client, "admin")).text
    assert 'arserver_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'arserver_jobs{status="done"} 1.0' in text
    assert "arserver_job_duration_seconds_count 1.0" in text


def test_the_worker_loop_outlives_database_errors_and_says_when_it_stopped(
    tmp_path: Path,
) -> None:
    unreachable = create_engine(f"sqlite:///{tmp_path / 'no such folder' / 'arserver.db'}")
    worker = Worker(unreachable, Settings(data_dir=tmp_path / "data"), name="test-worker")
    assert worker.state == "starting"
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, 0.01), daemon=True)
    thread.start()
    try:
        wait_until(lambda: worker.errors >= 3, 30, "the worker trying again")
        assert thread.is_alive()
        assert worker.state == "running"
    finally:
        stop.set()
        thread.join(30)
        unreachable.dispose()
    assert not thread.is_alive()
    assert worker.state == "stopped"


def test_readyz_fails_once_the_embedded_worker_stopped(
    client: TestClient, settings: Settings
) -> None:
    worker = Worker(engine_of(client), settings, name="test-worker")
    client.app.state.worker = worker  # type: ignore[attr-defined]
    assert client.get("/readyz").json().get("worker") == "starting"
    stop = threading.Event()
    stop.set()
    worker.run(stop)  # returns at once
    reply = client.get("/readyz")
    assert reply.status_code == 503, reply.text
    assert reply.json()["worker"] == "stopped"
