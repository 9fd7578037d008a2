"""Every way an upload or its conversion can fail ends in a message for the client that names
the upload by its file name and never a server path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from arserver.app import create_app
from arserver.config import Settings
from arserver.jobs.runner import public_message
from tests.arserver.support import ASSETS, auth, run_jobs, upload


def assert_names_no_server_path(message: str, settings: Settings) -> None:
    data_dir = settings.data_dir
    for path in {str(data_dir), str(data_dir.absolute()), str(data_dir.resolve())}:
        assert path not in message, message
    assert "/uploads/" not in message, message
    assert "/work/" not in message, message


def failed_asset(client: TestClient, settings: Settings, path: Path, **fields: str) -> Any:
    response = upload(client, path, **fields)
    assert response.status_code == 202, response.text
    run_jobs(client, settings)
    asset = client.get(
        f"/api/v1/assets/{response.json()['id']}", headers=auth(client, "viewer")
    ).json()
    assert asset["status"] == "failed", asset
    assert asset["tileset"] is None
    return asset


@pytest.mark.parametrize(
    ("name", "content", "fields", "fragments"),
    [
        ("broken.glb", b"glTF" + bytes(64), {"origin": "5,52,40"}, ["broken.glb", "cannot read"]),
        ("lamp.glb", None, {}, ["--origin LON,LAT,H"]),
        ("photo.glb", b"\x89PNG\r\n\x1a\n" + bytes(64), {"origin": "5,52,40"}, ["photo.glb"]),
        ("zones.geojson", b'{"features": [], "crs": 1', {}, ["zones.geojson"]),
    ],
)
def test_a_conversion_error_names_the_upload_not_the_server_path(
    client: TestClient,
    settings: Settings,
    tmp_path: Path,
    name: str,
    content: bytes | None,
    fields: dict[str, str],
    fragments: list[str],
) -> None:
    path = tmp_path / name
    path.write_bytes(content if content is not None else (ASSETS / "lamp_post.glb").read_bytes())
    error = failed_asset(client, settings, path, **fields)["error"]
    for fragment in fragments:
        assert fragment in error
    assert_names_no_server_path(error, settings)


@pytest.mark.parametrize(
    ("limits", "fragment"),
    [({"job_timeout_s": 0.05}, "took longer than"), ({"job_memory_mib": 64}, "crashed")],
)
def test_a_stopped_or_crashed_converter_names_no_server_path(
    settings: Settings, limits: dict[str, Any], fragment: str
) -> None:
    limited = settings.model_copy(update=limits)
    with TestClient(create_app(limited)) as client:
        error = failed_asset(client, limited, ASSETS / "parking_zones.geojson")["error"]
    assert fragment in error
    assert_names_no_server_path(error, limited)


def test_tiles_that_cannot_be_stored_fail_the_asset_with_a_plain_reason(
    client: TestClient, settings: Settings
) -> None:
    response = upload(client, ASSETS / "parking_zones.geojson")
    asset_id = response.json()["id"]
    blocker = settings.data_dir / "tiles" / asset_id
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"not a folder")  # the tile store cannot make the asset's folder
    run_jobs(client, settings)
    asset = client.get(f"/api/v1/assets/{asset_id}", headers=auth(client, "viewer")).json()
    assert (asset["status"], asset["error"]) == (
        "failed",
        "publishing the tiles failed on the server",
    )


@pytest.mark.parametrize(
    ("fields", "content", "status"),
    [
        ({"crs": "EPSG:99999"}, b"1 2 3\n", 422),
        ({"origin": "5,95,0"}, b"1 2 3\n", 422),
        ({"lifecycle": "imagined"}, b"1 2 3\n", 422),
        ({"heading": "west"}, b"1 2 3\n", 422),
        ({}, b"", 422),
    ],
)
def test_refused_uploads_name_no_server_path(
    client: TestClient,
    settings: Settings,
    tmp_path: Path,
    fields: dict[str, str],
    content: bytes,
    status: int,
) -> None:
    path = tmp_path / "points.xyz"
    path.write_bytes(content)
    response = upload(client, path, **fields)
    assert response.status_code == status
    assert_names_no_server_path(response.text, settings)


def test_public_message_replaces_known_paths_in_every_spelling_and_hides_others(
    tmp_path: Path,
) -> None:
    source = tmp_path / "data" / "uploads" / "a1" / "broken.glb"
    relative = Path("data/uploads/a1/broken.glb")
    message = f"{source}: cannot read; {relative} again; see /srv/arserver/work/j1/x.glb"
    cleaned = public_message(message, {source: "broken.glb", relative: "broken.glb"})
    assert cleaned == "broken.glb: cannot read; broken.glb again; see x.glb"
