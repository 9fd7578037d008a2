"""tiles.convert end to end: placement to the centimetre, valid content, metadata, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh

from tests.tiles.support import (
    ASSETS,
    RD_CRS,
    accessor,
    all_glbs,
    content_positions,
    read_glb,
    square,
    tetrahedron_glb,
    tiles,
)
from tests.validators.gltf import assert_valid_glb
from tiles.convert import ConvertOptions, InputError, convert
from tiles.crs import EnuFrame, Transformer, ecef_to_geodetic
from tiles.errors import TilesError

Y_UP = trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0])


def geojson(
    path: Path, features: list[dict[str, Any]], crs: dict[str, Any] | None = RD_CRS
) -> Path:
    document: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if crs is not None:
        document["crs"] = crs
    path.write_text(json.dumps(document))
    return path


def feature(geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def nearest(points: np.ndarray, target: np.ndarray) -> float:
    return float(np.linalg.norm(points - target, axis=1).min())


def ecef_of_rd(x: float, y: float, nap: float) -> np.ndarray:
    ex, ey, ez = Transformer.from_crs("EPSG:7415", "EPSG:4978").transform([x], [y], [nap])
    assert ez is not None
    return np.array([ex[0], ey[0], ez[0]])


def test_geojson_corner_lands_where_the_georeferencing_module_puts_it(tmp_path: Path) -> None:
    source = geojson(
        tmp_path / "zone.geojson", [feature(square(121_400.0, 487_400.0), base=-1.5, height=3.0)]
    )
    report = convert([source], tmp_path / "out")
    points = np.concatenate([p for _, p in content_positions(tmp_path / "out")])
    for corner in ((121_400.0, 487_400.0, -1.5), (121_410.0, 487_410.0, 1.5)):
        assert nearest(points, ecef_of_rd(*corner)) < 0.01
    assert report.summary["accuracy_m"] == pytest.approx(0.001)
    assert_valid_glb(all_glbs(tmp_path / "out"))


def test_a_building_at_nap_zero_in_amsterdam_stands_about_43_m_above_the_ellipsoid(
    tmp_path: Path,
) -> None:
    source = geojson(
        tmp_path / "b.geojson", [feature(square(121_400.0, 487_400.0), base=0.0, height=12.0)]
    )
    convert([source], tmp_path / "out")
    points = np.concatenate([p for _, p in content_positions(tmp_path / "out")])
    _, _, h = ecef_to_geodetic(points[:, 0], points[:, 1], points[:, 2])
    assert h.min() == pytest.approx(42.98, abs=0.01)  # NAP 0 m + quasi-geoid, not 0 m
    assert h.max() == pytest.approx(54.98, abs=0.01)


def test_wgs84_geojson_without_crs_member_follows_rfc_7946(tmp_path: Path) -> None:
    ring = [[4.9, 52.37], [4.9001, 52.37], [4.9001, 52.3701], [4.9, 52.37]]
    source = geojson(
        tmp_path / "w.geojson",
        [feature({"type": "Polygon", "coordinates": [ring]}, base=43.0)],
        crs=None,
    )
    report = convert([source], tmp_path / "out")
    assert report.summary["source_crs"] == ["EPSG:4979 (WGS 84)"]
    points = np.concatenate([p for _, p in content_positions(tmp_path / "out")])
    lon, lat, h = ecef_to_geodetic(points[:, 0], points[:, 1], points[:, 2])
    assert nearest(np.column_stack([lon, lat]), np.array([4.9, 52.37])) < 1e-7
    assert h.min() == pytest.approx(43.0, abs=0.001)


def test_pipe_centre_lies_depth_below_ground(tmp_path: Path) -> None:
    line = {"type": "LineString", "coordinates": [[121_400.0, 487_400.0], [121_450.0, 487_400.0]]}
    source = geojson(
        tmp_path / "p.geojson", [feature(line, depth=1.5, diameter=400, ground=-0.5, thema="water")]
    )
    convert([source], tmp_path / "out")
    ((_, points),) = content_positions(tmp_path / "out")
    start = ecef_of_rd(121_400.0, 487_400.0, -2.0)  # 1.5 m below a ground at -0.5 m NAP
    distance = np.linalg.norm(points - start, axis=1)
    assert distance.min() < 0.01  # the centre of the end cap
    rim = np.abs(distance - 0.2) < 0.01  # 400 mm diameter: the rim is 0.2 m from the centre
    assert rim.sum() >= 8


def test_every_feature_keeps_its_properties(tmp_path: Path) -> None:
    features = [
        feature(square(121_400.0, 487_400.0), name="P1", capacity=40, paid=True),
        feature(
            {"type": "Point", "coordinates": [121_420.0, 487_420.0]}, name="lamp 17", height=6.0
        ),
        feature(
            {"type": "LineString", "coordinates": [[121_400.0, 487_390.0], [121_430.0, 487_390.0]]},
            name="cable",
        ),
    ]
    convert([geojson(tmp_path / "f.geojson", features)], tmp_path / "out")
    (glb,) = all_glbs(tmp_path / "out")
    document, binary = read_glb(glb)
    metadata = document["extensions"]["EXT_structural_metadata"]
    table = metadata["propertyTables"][0]
    assert table["count"] == 3
    names = table["properties"]["name"]
    offsets = accessor_bytes(document, binary, names["stringOffsets"], "<u4")
    values = view_bytes(document, binary, names["values"])
    decoded = [values[offsets[i] : offsets[i + 1]].decode() for i in range(3)]
    assert decoded == ["P1", "lamp 17", "cable"]
    ids = set()
    for primitive in document["meshes"][0]["primitives"]:
        ids |= set(
            accessor(document, binary, primitive["attributes"]["_FEATURE_ID_0"])
            .astype(int)
            .tolist()
        )
    assert ids == {0, 1, 2}


def view_bytes(document: dict[str, Any], binary: bytes, index: int) -> bytes:
    view = document["bufferViews"][index]
    start = view.get("byteOffset", 0)
    return binary[start : start + view["byteLength"]]


def accessor_bytes(document: dict[str, Any], binary: bytes, index: int, dtype: str) -> np.ndarray:
    return np.frombuffer(view_bytes(document, binary, index), dtype=dtype)


def test_local_model_is_placed_by_origin_and_heading(tmp_path: Path) -> None:
    origin = (4.7610, 52.3095, 39.6)
    convert(
        [tetrahedron_glb(tmp_path / "t.glb")],
        tmp_path / "out",
        ConvertOptions(origin=origin, heading_deg=90.0),
    )
    points = np.concatenate([p for _, p in content_positions(tmp_path / "out")])
    # glTF (1, 2, 3) is y up: model z-up (1, -3, 2); turned 90 deg clockwise: east -3, north -1.
    expected = np.array(EnuFrame(*origin).to_ecef(-3.0, -1.0, 2.0)).ravel()
    assert nearest(points, expected) < 0.01


def test_model_in_crs_coordinates_is_z_up(tmp_path: Path) -> None:
    mesh = trimesh.Trimesh(
        vertices=[
            [121_400.0, 487_400.0, 2.0],
            [121_401.0, 487_400.0, 2.0],
            [121_400.0, 487_401.0, 2.0],
            [121_400.0, 487_400.0, 3.0],
        ],
        faces=[[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]],
    )
    path = tmp_path / "rd.ply"
    mesh.export(path)
    convert([path], tmp_path / "out", ConvertOptions(crs="EPSG:7415"))
    points = np.concatenate([p for _, p in content_positions(tmp_path / "out")])
    assert nearest(points, ecef_of_rd(121_400.0, 487_400.0, 3.0)) < 0.01


def test_textures_and_materials_survive(tmp_path: Path) -> None:
    convert([ASSETS / "bench.glb"], tmp_path / "out", ConvertOptions(origin=(4.761, 52.3095, 39.6)))
    (glb,) = all_glbs(tmp_path / "out")
    document, _ = read_glb(glb)
    assert len(document["images"]) == 1
    names = {m["name"] for m in document["materials"]}
    assert {"wood", "iron"} <= names
    wood = next(m for m in document["materials"] if m["name"] == "wood")
    assert "baseColorTexture" in wood["pbrMetallicRoughness"]
    assert any("TEXCOORD_0" in p["attributes"] for p in document["meshes"][0]["primitives"])
    assert_valid_glb([glb])


def test_large_mesh_gets_levels_of_detail_with_shrinking_geometric_error(tmp_path: Path) -> None:
    sphere = trimesh.creation.icosphere(subdivisions=6, radius=50.0)  # 81,920 triangles
    sphere.apply_transform(Y_UP)
    sphere.export(tmp_path / "sphere.glb")
    out = tmp_path / "out"
    convert(
        [tmp_path / "sphere.glb"],
        out,
        ConvertOptions(origin=(5.0, 52.0, 40.0), max_triangles_per_tile=8_000),
    )
    tileset = json.loads((out / "tileset.json").read_text())
    check_hierarchy(tileset["root"])
    leaves = [t for t in tiles(tileset) if not t.get("children")]
    assert len(leaves) >= 8
    assert all(t["geometricError"] == 0 for t in leaves)
    assert tileset["root"]["refine"] == "REPLACE"
    assert "content" in tileset["root"]  # a coarse version of the whole
    for tile, points in content_positions(out, enu=True):
        assert_box_contains(tile["boundingVolume"]["box"], points)
    assert_valid_glb(all_glbs(out))


def check_hierarchy(tile: dict[str, Any]) -> None:
    for child in tile.get("children", []):
        assert tile["geometricError"] >= 2 * child["geometricError"]
        assert tile["geometricError"] > 0
        check_hierarchy(child)


def assert_box_contains(box: list[float], points: np.ndarray) -> None:
    centre = np.array(box[:3])
    half = np.array([box[3], box[7], box[11]])
    assert (np.abs(points - centre) <= half + 1e-3).all()


def test_many_small_features_are_split_spatially_and_refine_by_adding(tmp_path: Path) -> None:
    features = [
        feature(square(120_000.0 + 20 * (k % 40), 487_000.0 + 20 * (k // 40), 8.0), number=k)
        for k in range(1_600)
    ]
    out = tmp_path / "out"
    report = convert(
        [geojson(tmp_path / "many.geojson", features)],
        out,
        ConvertOptions(max_triangles_per_tile=2_000),
    )
    tileset = json.loads((out / "tileset.json").read_text())
    assert tileset["root"]["refine"] == "ADD"
    check_hierarchy(tileset["root"])
    contents = content_positions(out, enu=True)
    assert len(contents) == report.summary["counts"]["tiles"] > 4
    for tile, points in contents:
        assert_box_contains(tile["boundingVolume"]["box"], points)
    assert report.summary["counts"]["features"] == 1_600


def test_tileset_records_crs_transformation_accuracy_bbox_and_counts(tmp_path: Path) -> None:
    convert([ASSETS / "parking_zones.geojson"], tmp_path / "out")
    extras = json.loads((tmp_path / "out" / "tileset.json").read_text())["asset"]["extras"][
        "arserver"
    ]
    assert extras["source_crs"] == ["EPSG:7415 (Amersfoort / RD New + NAP height)"]
    assert "RDNAPTRANS" in extras["transformation"][0]
    assert extras["accuracy_m"] == pytest.approx(0.001)
    west, south, east, north = extras["wgs84_bbox"]
    assert 4.7 < west < east < 4.8
    assert 52.3 < south < north < 52.4
    assert extras["counts"]["features"] == 4
    assert extras["tool"].startswith("arserver tiles")


# -- bad input: one clear error naming the file, nothing written ------------------------------


def bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, ConvertOptions, str]]:
    good = (ASSETS / "lamp_post.glb").read_bytes()
    cases: dict[str, tuple[Path, ConvertOptions, str]] = {}
    here = ConvertOptions(origin=(5.0, 52.0, 40.0))

    def write(name: str, data: bytes | str) -> Path:
        path = tmp_path / "in" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return path

    cases["truncated glb"] = (
        write("cut.glb", good[: len(good) // 2]),
        here,
        "cannot read the model",
    )
    cases["corrupt glb"] = (
        write("noise.glb", b"glTF" + bytes(range(256)) * 4),
        here,
        "cannot read the model",
    )
    cases["empty file"] = (write("empty.geojson", b""), ConvertOptions(), "the file is empty")
    cases["NaN vertices"] = (
        write("nan.obj", "v 0 0 0\nv 1 0 0\nv nan 1 0\nf 1 2 3\n"),
        here,
        "NaN",
    )
    cases["unknown CRS"] = (
        ASSETS / "cables_pipes.geojson",
        ConvertOptions(crs="EPSG:99999"),
        "unknown CRS",
    )
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]]}
    cases["invalid geometry"] = (
        write(
            "bowtie.geojson",
            json.dumps({"type": "FeatureCollection", "crs": RD_CRS, "features": [feature(bowtie)]}),
        ),
        ConvertOptions(),
        "Self-intersection",
    )
    empty = {"type": "Polygon", "coordinates": []}
    cases["empty geometry"] = (
        write(
            "hollow.geojson",
            json.dumps({"type": "FeatureCollection", "crs": RD_CRS, "features": [feature(empty)]}),
        ),
        ConvertOptions(),
        "empty geometry",
    )
    cases["no CRS"] = (ASSETS / "lamp_post.glb", ConvertOptions(), "--crs EPSG:N")
    cases["malformed JSON"] = (
        write("broken.geojson", '{"type": "FeatureCollection", "features": ['),
        ConvertOptions(),
        "not valid JSON",
    )
    cases["outside the RD grid"] = (
        write(
            "far.geojson",
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "crs": RD_CRS,
                    "features": [feature(square(900_000.0, 100_000.0))],
                }
            ),
        ),
        ConvertOptions(),
        "outside",
    )
    return cases


@pytest.mark.parametrize(
    "case",
    [
        "truncated glb", "corrupt glb", "empty file", "NaN vertices", "unknown CRS",
        "invalid geometry", "empty geometry", "no CRS", "malformed JSON", "outside the RD grid",
    ],
)  # fmt: skip
def test_bad_input_gives_one_clear_error_naming_the_file_and_writes_nothing(
    tmp_path: Path, case: str
) -> None:
    path, options, fragment = bad_inputs(tmp_path)[case]
    out = tmp_path / "out"
    with pytest.raises(TilesError) as caught:
        convert([path], out, options)
    assert str(path) in str(caught.value) or path.name in str(caught.value)
    assert fragment in str(caught.value)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_a_failed_conversion_leaves_an_existing_tileset_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    convert([ASSETS / "parking_zones.geojson"], out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(InputError):
        convert([ASSETS / "lamp_post.glb"], out)  # no CRS, no origin
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert before == after


def test_a_successful_conversion_replaces_the_old_tileset_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    convert([ASSETS / "parking_zones.geojson"], out)
    assert not (out / "stale.txt").exists()
    assert (out / "tileset.json").is_file()


def test_obj_with_missing_material_converts_with_a_warning(tmp_path: Path) -> None:
    obj = tmp_path / "box.obj"
    obj.write_text(
        "mtllib gone.mtl\nusemtl paint\n"
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"
    )
    report = convert([obj], tmp_path / "out", ConvertOptions(origin=(5.0, 52.0, 40.0)))
    assert any("gone.mtl" in w for w in report.warnings)
    assert_valid_glb(all_glbs(tmp_path / "out"))


def test_sample_assets_all_convert_to_valid_content(tmp_path: Path) -> None:
    here = ConvertOptions(origin=(4.761, 52.3095, 39.6))
    outputs = []
    for name, options in (
        ("lamp_post.glb", here),
        ("bench.glb", here),
        ("parking_zones.geojson", ConvertOptions()),
        ("cables_pipes.geojson", ConvertOptions()),
    ):
        out = tmp_path / name
        convert([ASSETS / name], out, options)
        outputs.extend(all_glbs(out))
    assert_valid_glb(outputs)


def test_missing_input_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.geojson: no such file"):
        convert([tmp_path / "nope.geojson"], tmp_path / "out")


def test_unsupported_format_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(InputError, match=r"unsupported input format '\.txt'"):
        convert([path], tmp_path / "out")


def test_inputs_can_be_combined_into_one_tileset(tmp_path: Path) -> None:
    shutil.copy(ASSETS / "parking_zones.geojson", tmp_path / "a.geojson")
    report = convert([tmp_path / "a.geojson", ASSETS / "cables_pipes.geojson"], tmp_path / "out")
    assert report.summary["counts"]["features"] == 9
