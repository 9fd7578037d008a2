"""`arserver import` against a real running server: upload, follow, report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from arserver.cli import cli
from arserver.commands.server import start_server
from arserver.config import Settings
from tests.arserver.support import ASSETS, tokens_for
from tests.support import free_port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    settings = Settings(data_dir=tmp_path / "data")
    [token] = tokens_for(settings, "gis")
    running, url = start_server(settings, free_port())
    try:
        yield url, token
    finally:
        running.stop()


def test_import_uploads_and_reports_the_tileset(server: tuple[str, str]) -> None:
    url, token = server
    args = [
        "import",
        str(ASSETS / "parking_zones.geojson"),
        "--server",
        url,
        "--token",
        token,
        "--public",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    assert "ready" in result.stdout
    assert f"{url}/tiles/" in result.stdout


def test_import_reports_a_failed_conversion_and_exits_1(server: tuple[str, str]) -> None:
    url, token = server
    result = CliRunner().invoke(
        cli, ["import", str(ASSETS / "lamp_post.glb"), "--server", url, "--token", token]
    )
    assert result.exit_code == 1
    assert "failed" in result.stdout
    assert "--origin" in result.stdout


def test_import_with_a_wrong_token_is_one_clear_error(server: tuple[str, str]) -> None:
    url, _ = server
    result = CliRunner().invoke(
        cli,
        ["import", str(ASSETS / "parking_zones.geojson"), "--server", url, "--token", "ars_wrong"],
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("arserver import: error: POST /api/v1/assets: 401")


def test_import_to_an_unreachable_server_is_one_clear_error() -> None:
    args = [
        "import",
        str(ASSETS / "parking_zones.geojson"),
        "--server",
        "http://127.0.0.1:1",
        "--token",
        "ars_x",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1:1" in result.stderr
