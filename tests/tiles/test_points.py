"""Point clouds through py3dtiles' octree into valid, correctly placed 3D Tiles 1.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import pytest

from tests.tiles.support import (
    AMERSFOORT_RD,
    ASSETS,
    all_glbs,
    amersfoort_laz,
    content_positions,
    laz_chunk_size,
    read_glb,
    tiles,
    write_las,
)
from tests.validators.gltf import assert_valid_glb
from tiles.convert import ConvertOptions, InputError, convert
from tiles.crs import Transformer

SAMPLE = ASSETS / "tree_scan.laz"


def test_a_known_point_lands_where_the_georeferencing_module_puts_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    xyz = np.column_stack(
        [
            rng.uniform(121_400, 121_430, 5_000),
            rng.uniform(487_400, 487_430, 5_000),
            rng.uniform(-2, 8, 5_000),
        ]
    )
    known = np.array([121_415.123, 487_415.456, 1.789])
    xyz[0] = known
    convert([write_las(tmp_path / "c.las", xyz, white=True)], tmp_path / "out")
    points = np.concatenate([p for _, p in content_positions(tmp_path / "out")])
    ex, ey, ez = Transformer.from_crs("EPSG:7415", "EPSG:4978").transform(*[[v] for v in known])
    assert ez is not None
    distance = np.linalg.norm(points - [ex[0], ey[0], ez[0]], axis=1)
    assert distance.min() < 0.01


def test_sample_scan_gives_valid_glb_with_normalised_colours_and_a_y_up_root(
    tmp_path: Path,
) -> None:
    report = convert([SAMPLE], tmp_path / "out")
    assert report.summary["counts"]["points_in_tiles"] >= 24_000
    assert report.summary["accuracy_m"] == pytest.approx(0.001)
    glbs = all_glbs(tmp_path / "out")
    assert_valid_glb(glbs)
    document, _ = read_glb(glbs[0])
    primitive = document["meshes"][0]["primitives"][0]
    colour = document["accessors"][primitive["attributes"]["COLOR_0"]]
    assert (colour["type"], colour["componentType"], colour["normalized"]) == ("VEC4", 5121, True)
    assert primitive["mode"] == 0
    matrix = np.array(document["nodes"][0]["matrix"]).reshape(4, 4).T
    np.testing.assert_allclose(matrix[:3, :3], [[1, 0, 0], [0, 0, 1], [0, -1, 0]])


def test_boxes_contain_their_points_and_errors_shrink(tmp_path: Path) -> None:
    convert([SAMPLE], tmp_path / "out")
    for tile, points in content_positions(tmp_path / "out", enu=True):
        box = tile["boundingVolume"]["box"]
        centre, half = np.array(box[:3]), np.array([box[3], box[7], box[11]])
        assert (np.abs(points - centre) <= half + 1e-3).all()
    tileset = json.loads((tmp_path / "out" / "tileset.json").read_text())
    for tile in tiles(tileset):
        for child in tile.get("children", []):
            assert child["geometricError"] <= tile["geometricError"]


def test_xyz_without_crs_asks_for_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "cloud.xyz"
    path.write_text("121400 487400 0\n121401 487401 1\n")
    with pytest.raises(InputError, match=r"cloud\.xyz: no CRS .*--crs EPSG:N"):
        convert([path], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_xyz_with_crs_converts(tmp_path: Path) -> None:
    path = tmp_path / "cloud.xyz"
    rows = [f"{121_400 + i * 0.1} {487_400 + i * 0.05} {i * 0.01}" for i in range(2_000)]
    path.write_text("\n".join(rows) + "\n")
    report = convert([path], tmp_path / "out", ConvertOptions(crs="EPSG:7415"))
    assert report.summary["counts"]["points_in_tiles"] >= 2_000
    assert_valid_glb(all_glbs(tmp_path / "out"))


def test_corrupt_las_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "broken.las"
    path.write_bytes(b"LASF" + bytes(300))
    with pytest.raises(InputError, match=r"broken\.las"):
        convert([path], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_points_and_meshes_are_not_mixed(tmp_path: Path) -> None:
    other = ASSETS / "parking_zones.geojson"
    with pytest.raises(InputError, match="separate tilesets"):
        convert([SAMPLE, other], tmp_path / "out")


_CONVERT = (
    "import json, sys\n"
    "from tiles.convert import convert\n"
    "print(json.dumps(convert([sys.argv[1]], sys.argv[2]).summary))\n"
)


def _summary_of_conversion_in_a_process(source: Path, out: Path, timeout_s: float) -> Any:
    """``tiles.convert.convert`` in a process of its own (in its own process group, with
    py3dtiles' workers), killed as a whole at ``timeout_s``: a hang fails the test."""
    process = subprocess.Popen(
        [sys.executable, "-c", _CONVERT, str(source), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"converting {source.name} did not end within {timeout_s:g} s")
    assert process.returncode == 0, stderr
    return json.loads(stdout.splitlines()[-1])


def test_a_laz_of_many_chunks_converts_completely_and_in_place(tmp_path: Path) -> None:
    # Forked py3dtiles workers hung in the LAZ decoder as soon as a file had a second chunk.
    laz = amersfoort_laz(tmp_path / "scan.laz", 200_000)
    assert laz_chunk_size(laz) < 200_000
    summary = _summary_of_conversion_in_a_process(laz, tmp_path / "out", timeout_s=120)
    assert summary["counts"]["points_in_tiles"] >= 200_000  # py3dtiles repeats a root sample
    assert summary["counts"]["tiles"] > 1
    x0, y0 = AMERSFOORT_RD
    corners = np.array(
        [[x, y, z] for x in (x0, x0 + 200) for y in (y0, y0 + 200) for z in (-1.0, 20.0)]
    )
    ecef = Transformer.from_crs("EPSG:7415", "EPSG:4978").transform(*corners.T)
    lon, lat, h = pyproj.Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True).transform(
        *ecef
    )
    assert summary["wgs84_bbox"] == pytest.approx(
        [min(lon), min(lat), max(lon), max(lat)], abs=1e-6
    )
    assert summary["height_range"] == pytest.approx([min(h), max(h)], abs=0.05)
