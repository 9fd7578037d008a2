"""Every way an upload or its conversion can fail ends in a message for the client that names
the upload by its file name and never a server path (the unreadable model, the missing origin
and the converter's limits are in tests/arserver/api/test_assets.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from arserver.config import Settings
from arserver.jobs.runner import public_message
from tests.arserver.support import (
    ASSETS,
    assert_names_no_server_path,
    auth,
    failed_asset,
    run_jobs,
    upload,
)


@pytest.mark.parametrize(
    ("name", "content", "fields", "fragments"),
    [
        ("photo.glb", b"\x89PNG\r\n\x1a\n" + bytes(64), {"origin": "5,52,40"}, ["photo.glb"]),
        ("zones.geojson", b'{"features": [], "crs": 1', {}, ["zones.geojson"]),
    ],
)
def test_a_conversion_error_names_the_upload_not_the_server_path(
    client: TestClient,
    settings: Settings,
    tmp_path: Path,
    name: str,
    content: bytes,
    fields: dict[str, str],
    fragments: list[str],
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    error = failed_asset(client, settings, path, **fields)["error"]
    for fragment in fragments:
        assert fragment in error
    assert_names_no_server_path(error, settings)


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
