"""`arserver convert`: progress, a summary, one error line, nothing written on failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from arserver.cli import cli
from tests.arserver.support import ASSETS


def test_converts_geojson_and_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "zones"
    result = CliRunner().invoke(
        cli, ["convert", str(ASSETS / "parking_zones.geojson"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    tileset = json.loads((out / "tileset.json").read_text())
    assert tileset["asset"]["version"] == "1.1"
    assert "4 features" in result.stdout
    assert "accuracy 0.001 m" in result.stdout
    assert "EPSG:7415" in result.stdout


def test_places_a_model_with_origin_and_heading(tmp_path: Path) -> None:
    out = tmp_path / "lamp"
    args = [
        "convert",
        str(ASSETS / "lamp_post.glb"),
        "--origin",
        "4.7610,52.3095,39.6",
        "--heading",
        "30",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    origin = json.loads((out / "tileset.json").read_text())["asset"]["extras"]["arserver"]["origin"]
    assert origin == [4.761, 52.3095, 39.6]


def test_a_model_without_crs_or_origin_says_which_flag_to_add(tmp_path: Path) -> None:
    out = tmp_path / "lamp"
    result = CliRunner().invoke(cli, ["convert", str(ASSETS / "lamp_post.glb"), "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "arserver convert: error:" in result.stderr
    assert "--origin LON,LAT,H" in result.stderr
    assert "--crs" in result.stderr
    assert not out.exists()


def test_a_malformed_origin_is_a_usage_error(tmp_path: Path) -> None:
    args = [
        "convert",
        str(ASSETS / "lamp_post.glb"),
        "--origin",
        "4.7,north",
        "--out",
        str(tmp_path / "x"),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "LON,LAT,H" in result.stderr


def test_unknown_crs_is_a_usage_error(tmp_path: Path) -> None:
    args = [
        "convert",
        str(ASSETS / "parking_zones.geojson"),
        "--crs",
        "EPSG:99999",
        "--out",
        str(tmp_path / "x"),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "unknown CRS" in result.stderr


def test_geojson_attribute_names_can_be_chosen(tmp_path: Path) -> None:
    source = tmp_path / "pipes.geojson"
    feature = {
        "type": "Feature",
        "properties": {"diepte": 2.0, "diam": 300, "maaiveld": -1.0},
        "geometry": {
            "type": "LineString",
            "coordinates": [[121_400.0, 487_400.0], [121_450.0, 487_400.0]],
        },
    }
    crs = {"type": "name", "properties": {"name": "EPSG:28992"}}
    source.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": [feature]}))
    out = tmp_path / "out"
    args = ["convert", str(source), "--out", str(out)]
    args += [
        "--attribute",
        "depth=diepte",
        "--attribute",
        "diameter=diam",
        "--attribute",
        "ground=maaiveld",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    heights = json.loads((out / "tileset.json").read_text())["asset"]["extras"]["arserver"][
        "height_range"
    ]
    # Centre 3 m below NAP 0 in Amsterdam (about 43 m ellipsoidal), 0.15 m radius.
    assert heights[0] == pytest.approx(42.98 - 3.0 - 0.15, abs=0.02)


def test_an_unknown_attribute_role_is_a_usage_error(tmp_path: Path) -> None:
    args = [
        "convert",
        str(ASSETS / "parking_zones.geojson"),
        "--attribute",
        "colour=x",
        "--out",
        str(tmp_path / "x"),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "ROLE=PROPERTY" in result.stderr


def test_cityjson_lod_can_be_chosen(tmp_path: Path) -> None:
    out = tmp_path / "b"
    result = CliRunner().invoke(
        cli, ["convert", str(ASSETS / "buildings.city.json"), "--lod", "1.2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    assert (
        json.loads((out / "tileset.json").read_text())["asset"]["extras"]["arserver"]["counts"][
            "triangles"
        ]
        == 24
    )
