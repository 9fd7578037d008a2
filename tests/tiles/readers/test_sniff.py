"""Input formats are told by content, not by name: detection rules, and conversions end to end."""

from __future__ import annotations

import importlib.util
import json
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import laspy
import numpy as np
import pytest
import trimesh

from tests.tiles.support import (
    ASSETS,
    RD_CRS,
    all_glbs,
    png_bytes,
    read_glb,
    square,
    tetrahedron,
    write_las,
)
from tiles.convert import ConvertOptions, InputError, convert
from tiles.errors import TilesError, UnsupportedFormatError
from tiles.readers import cityjson, geojson, mesh, sniff

SUPPORTED = "glTF/GLB, OBJ, PLY, STL, LAS/LAZ, XYZ, GeoJSON, CityJSON"
HERE = ConvertOptions(origin=(5.0, 52.0, 40.0))
TETRAHEDRON = tetrahedron()


# -- sample files ---------------------------------------------------------------------------


def bag_cityjson(path: Path, buildings: int) -> Path:
    """A 3DBAG-like CityJSON written the way cjio and 3DBAG exports order it: ``CityObjects``
    and ``vertices`` first, ``type`` last. Every Building has one BuildingPart with an LoD 1.2
    block and an LoD 2.2 box with roof, wall and ground semantics (12 triangles)."""
    objects: dict[str, Any] = {}
    vertices: list[list[int]] = []
    for k in range(buildings):
        x, y = 1_000 * 15 * (k % 10), 1_000 * 15 * (k // 10)  # in millimetres (scale 0.001)
        first = len(vertices)
        for z in (0, 6_000):
            vertices += [[x, y, z], [x + 10_000, y, z], [x + 10_000, y + 8_000, z]]
            vertices += [[x, y + 8_000, z]]
        a, b, c, d, e, f, g, h = range(first, first + 8)
        shell = [
            [[a, d, c, b]],
            [[a, b, f, e]],
            [[b, c, g, f]],
            [[c, d, h, g]],
            [[d, a, e, h]],
            [[e, f, g, h]],
        ]
        identifier = f"NL.IMBAG.Pand.0362100{k:06d}"
        objects[identifier] = {
            "type": "Building",
            "attributes": {
                "identificatie": identifier,
                "oorspronkelijkbouwjaar": 1900 + k,
                "status": "Pand in gebruik",
                "b3_h_maaiveld": -3.6,
                "b3_h_dak_max": 2.4,
            },
            "children": [f"{identifier}-0"],
        }
        objects[f"{identifier}-0"] = {
            "type": "BuildingPart",
            "parents": [identifier],
            "geometry": [
                {"type": "Solid", "lod": "1.2", "boundaries": [shell]},
                {
                    "type": "Solid",
                    "lod": "2.2",
                    "boundaries": [shell],
                    "semantics": {
                        "surfaces": [
                            {"type": "GroundSurface"},
                            {"type": "WallSurface"},
                            {"type": "RoofSurface"},
                        ],
                        "values": [[0, 1, 1, 1, 1, 2]],
                    },
                },
            ],
        }
    document = {
        "CityObjects": objects,
        "vertices": [[vx, vy, vz - 3_600] for vx, vy, vz in vertices],
        "transform": {"scale": [0.001, 0.001, 0.001], "translate": [111_000.0, 481_000.0, 0.0]},
        "metadata": {
            "referenceSystem": "https://www.opengis.net/def/crs/EPSG/0/7415",
            "identifier": "3DBAG tile 9-284-556",
        },
        "version": "2.0",
        "type": "CityJSON",
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def features_first_geojson(path: Path, count: int) -> Path:
    features = [
        {
            "type": "Feature",
            "properties": {"name": f"zone {k}", "height": 2.0},
            "geometry": square(121_400.0 + 20 * k, 487_400.0),
        }
        for k in range(count)
    ]
    path.write_text(json.dumps({"features": features, "crs": RD_CRS, "type": "FeatureCollection"}))
    return path


def gltf_json(asset_last: bool = False) -> bytes:
    """The tetrahedron as a glTF JSON document with its buffer embedded as a data URI."""
    files = trimesh.Scene(TETRAHEDRON).export(file_type="gltf", embed_buffers=True)
    document = json.loads(files["model.gltf"])
    if asset_last:
        document["asset"] = document.pop("asset")
    return json.dumps(document).encode()


def scan(path: Path, count: int = 3_000, *, compress: bool = False) -> Path:
    """A LAS (or, with ``compress``, LAZ) scan of ``count`` points in RD New + NAP."""
    rng = np.random.default_rng(7)
    xyz = np.column_stack(
        [
            rng.uniform(121_400, 121_420, count),
            rng.uniform(487_400, 487_420, count),
            rng.uniform(-2, 6, count),
        ]
    )
    return write_las(path, xyz, compress=compress)


def binary_stl(path: Path, header: bytes) -> Path:
    """The tetrahedron as binary STL with the given 80-byte header text."""
    triangles = TETRAHEDRON.vertices[TETRAHEDRON.faces]
    body = b"".join(
        struct.pack("<3f", *normal) + triangle.astype("<f4").tobytes() + b"\x00\x00"
        for normal, triangle in zip(TETRAHEDRON.face_normals, triangles, strict=True)
    )
    path.write_bytes(header.ljust(80, b" ") + struct.pack("<I", len(triangles)) + body)
    return path


def png(path: Path) -> Path:
    path.write_bytes(png_bytes())
    return path


def feature_names(out: Path) -> list[str]:
    (glb,) = all_glbs(out)
    document, _ = read_glb(glb)
    schema = document["extensions"]["EXT_structural_metadata"]["schema"]["classes"]["feature"]
    return sorted(p["name"] for p in schema["properties"].values())


# -- JSON: the top-level type wherever it stands ---------------------------------------------


def test_cityjson_named_json_with_type_after_megabytes_of_city_objects_converts(
    tmp_path: Path,
) -> None:
    path = bag_cityjson(tmp_path / "9-284-556.json", buildings=100)
    text = path.read_text()
    assert text.index('"type": "CityJSON"') > sniff.HEAD_SIZE > 4096  # beyond any head
    assert sniff.detect(path) is sniff.CITYJSON
    assert cityjson.supports(path)
    assert not geojson.supports(path)

    report = convert([path], tmp_path / "out")
    assert report.summary["counts"]["features"] == 100  # one per BuildingPart
    assert report.summary["counts"]["triangles"] == 100 * 12  # LoD 2.2, the highest
    assert report.summary["source_crs"] == ["EPSG:7415 (Amersfoort / RD New + NAP height)"]
    assert report.warnings == []  # .json is a fine name for CityJSON
    tileset = json.loads((tmp_path / "out" / "tileset.json").read_text())
    assert tileset["asset"]["version"] == "1.1"
    assert tileset["asset"]["extras"]["arserver"]["sources"] == ["9-284-556.json"]
    assert {"b3_h_dak_max", "identificatie", "parent"} <= set(feature_names(tmp_path / "out"))


def test_geojson_named_json_with_features_before_type_converts(tmp_path: Path) -> None:
    path = features_first_geojson(tmp_path / "zones.json", count=3)
    assert sniff.detect(path) is sniff.GEOJSON
    assert geojson.supports(path)
    report = convert([path], tmp_path / "out")
    assert report.summary["counts"]["features"] == 3
    assert report.summary["source_crs"] == ["EPSG:7415 (Amersfoort / RD New + NAP height)"]
    assert "name" in feature_names(tmp_path / "out")


def test_type_inside_nested_objects_is_not_the_top_level_type(tmp_path: Path) -> None:
    path = tmp_path / "nested.json"
    path.write_text(json.dumps({"data": {"type": "FeatureCollection"}, "type": "CityJSON"}))
    assert sniff.detect(path) is sniff.CITYJSON


def test_a_bare_geometry_is_geojson(tmp_path: Path) -> None:
    path = tmp_path / "shape.json"
    path.write_text(json.dumps({"coordinates": [[0, 0], [1, 1]], "type": "LineString"}))
    assert sniff.detect(path) is sniff.GEOJSON


def test_json_with_no_top_level_type_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "zones.json"
    path.write_text(json.dumps({"features": [], "name": "zones"}))
    with pytest.raises(UnsupportedFormatError) as caught:
        sniff.detect(path)
    assert str(caught.value) == (
        'zones.json: a JSON object with no top-level "type" member, so neither GeoJSON nor '
        f"CityJSON (supported: {SUPPORTED})"
    )
    with pytest.raises(InputError, match=r'zones\.json: a JSON object with no top-level "type"'):
        convert([path], tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("document", "detected"),
    [
        ({"type": "CityJSONFeature", "CityObjects": {}, "vertices": []}, "CityJSONFeature"),
        ({"type": "Topology", "objects": {}}, "TopoJSON"),
        ({"type": "Sensor", "name": "s1"}, "a JSON object of type 'Sensor'"),
        ({"asset": {"version": "1.1"}, "geometricError": 1, "root": {}}, "3D Tiles tileset"),
        ([{"type": "Feature"}], "JSON array"),
    ],
)  # fmt: skip
def test_other_json_is_named(tmp_path: Path, document: Any, detected: str) -> None:
    path = tmp_path / "thing.geojson"
    path.write_text(json.dumps(document))
    with pytest.raises(UnsupportedFormatError) as caught:
        sniff.detect(path)
    assert str(caught.value).startswith("thing.geojson: looks like ")
    assert detected in str(caught.value)
    assert str(caught.value).endswith(f"which is not a supported input (supported: {SUPPORTED})")


def test_broken_json_before_any_type_is_refused_as_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text('{"features": [{"geometry": ')
    with pytest.raises(UnsupportedFormatError, match=r"cut\.json: not valid JSON before a top"):
        sniff.detect(path)


def test_json_with_a_byte_order_mark_is_detected_and_read(tmp_path: Path) -> None:
    path = features_first_geojson(tmp_path / "bom.geojson", count=2)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert sniff.detect(path) is sniff.GEOJSON
    assert len(geojson.read(path).features) == 2


def test_the_c_backend_of_ijson_is_used_when_installed() -> None:
    if importlib.util.find_spec("ijson.backends._yajl2") is None:
        pytest.skip("ijson's C extension is not installed")
    assert sniff.IJSON_BACKEND == "yajl2_c"


def test_a_late_type_is_found_by_streaming_without_building_the_document(
    tmp_path: Path,
) -> None:
    path = bag_cityjson(tmp_path / "big.json", buildings=3_000)
    size = path.stat().st_size
    assert size > 3_000_000
    tracemalloc.start()
    try:
        found = sniff.detect(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found is sniff.CITYJSON
    assert peak < size / 10  # a few read buffers, not the document (which is ~10x its size)


# -- binary formats by their magic -----------------------------------------------------------


def test_glb_named_gltf_and_gltf_named_glb_are_read_by_content(tmp_path: Path) -> None:
    glb = tmp_path / "tetra.gltf"
    glb.write_bytes(trimesh.Scene(TETRAHEDRON).export(file_type="glb"))
    gltf = tmp_path / "tetra.glb"
    gltf.write_bytes(gltf_json())
    assert sniff.detect(glb) is sniff.GLB
    assert sniff.detect(gltf) is sniff.GLTF
    for path in (glb, gltf):
        report = convert([path], tmp_path / f"out_{path.suffix[1:]}", HERE)
        assert report.summary["counts"]["triangles"] == 4
        assert report.summary["counts"]["features"] == 1
        assert any(f"despite the {path.suffix} name" in w for w in report.warnings)


def test_gltf_with_its_asset_member_after_the_buffers_is_gltf(tmp_path: Path) -> None:
    path = tmp_path / "late.gltf"
    path.write_bytes(gltf_json(asset_last=True))
    assert path.read_text().index('"asset"') > path.read_text().index('"buffers"')
    assert sniff.detect(path) is sniff.GLTF
    assert len(mesh.read(path).nodes) == 1


def test_las_named_xyz_is_read_as_las_with_the_crs_of_its_header(tmp_path: Path) -> None:
    path = scan(tmp_path / "scan.xyz")
    assert sniff.detect(path) is sniff.LAS
    report = convert([path], tmp_path / "out")  # as XYZ it would have no CRS and fail
    assert report.summary["source_crs"] == ["EPSG:7415 (Amersfoort / RD New + NAP height)"]
    assert report.summary["counts"]["points_in_tiles"] >= 3_000
    assert report.summary["sources"] == ["scan.xyz"]
    assert any("read as LAS" in w for w in report.warnings)
    assert not list((tmp_path / "out").glob("_*"))  # no scratch or link left in the tileset


def test_laz_is_told_from_las_by_its_compression(tmp_path: Path) -> None:
    if not laspy.LazBackend.detect_available():
        pytest.skip("no LAZ backend for laspy")
    assert sniff.detect(scan(tmp_path / "plain.laz")) is sniff.LAS
    assert sniff.detect(scan(tmp_path / "packed.las", compress=True)) is sniff.LAZ
    sample = ASSETS / "tree_scan.laz"
    assert sniff.detect(sample) is sniff.LAZ


def test_png_named_glb_is_refused_naming_png(tmp_path: Path) -> None:
    path = png(tmp_path / "zones.glb")
    with pytest.raises(UnsupportedFormatError) as caught:
        sniff.detect(path)
    expected = (
        "zones.glb: looks like a PNG image, which is not a supported input "
        f"(supported: {SUPPORTED})"
    )
    assert str(caught.value) == expected
    assert caught.value.detected == "a PNG image"
    with pytest.raises(InputError) as wrapped:
        convert([path], tmp_path / "out", HERE)
    assert str(wrapped.value) == f"{path}: {caught.value.reason}"
    assert expected in str(wrapped.value)
    assert not (tmp_path / "out").exists()
    with pytest.raises(UnsupportedFormatError, match=r"^a PNG image: looks like a PNG image"):
        sniff.detect(png(tmp_path / "a PNG image"))


def test_binary_stl_whose_header_starts_with_solid_is_binary(tmp_path: Path) -> None:
    path = binary_stl(tmp_path / "part.stl", b"solid part exported by a CAD tool")
    assert path.read_bytes().startswith(b"solid ")
    assert path.stat().st_size == 84 + 50 * 4
    assert sniff.detect(path) is sniff.STL
    report = convert([path], tmp_path / "out", HERE)
    assert report.summary["counts"]["triangles"] == 4


def test_ascii_stl_and_binary_stl_under_other_names(tmp_path: Path) -> None:
    ascii_stl = tmp_path / "part.obj"
    ascii_stl.write_bytes(trimesh.exchange.stl.export_stl_ascii(TETRAHEDRON).encode())
    assert sniff.detect(ascii_stl) is sniff.STL
    assert sniff.detect(binary_stl(tmp_path / "part.bin", b"\x00" * 80)) is sniff.STL
    assert len(mesh.read(ascii_stl).nodes[0].faces) == 4


def test_ply_mesh_and_ply_points_keep_their_current_split(tmp_path: Path) -> None:
    mesh_ply = tmp_path / "mesh.dat"
    mesh_ply.write_bytes(TETRAHEDRON.export(file_type="ply"))
    cloud_ply = tmp_path / "cloud.dat"
    cloud_ply.write_bytes(trimesh.PointCloud(TETRAHEDRON.vertices).export(file_type="ply"))
    assert sniff.detect(mesh_ply) is sniff.PLY_MESH
    assert sniff.detect(cloud_ply) is sniff.PLY_POINTS
    assert mesh.has_faces(mesh_ply)
    assert not mesh.has_faces(cloud_ply)


@pytest.mark.parametrize(
    ("data", "detected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
        (b"PK\x03\x04" + bytes(40), "a ZIP archive"),
        (b"SQLite format 3\x00" + bytes(100), "an SQLite database"),
        (b"b3dm\x01\x00\x00\x00" + bytes(40), "a 3D Tiles b3dm tile"),
        (b'<?xml version="1.0"?>\n<COLLADA xmlns="x">', "a COLLADA model"),
        (b"ISO-10303-21;\nHEADER;\n", "a STEP file"),
    ],
)
def test_known_unsupported_formats_are_named(tmp_path: Path, data: bytes, detected: str) -> None:
    path = tmp_path / "input.glb"
    path.write_bytes(data)
    with pytest.raises(UnsupportedFormatError, match=rf"input\.glb: looks like {detected}"):
        sniff.detect(path)


# -- plain text: OBJ and XYZ, the extension only as tie-breaker ------------------------------


def test_obj_and_xyz_are_told_apart_by_their_lines(tmp_path: Path) -> None:
    obj = tmp_path / "model.txt"
    obj.write_text("# made by hand\nmtllib m.mtl\no box\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    xyz = tmp_path / "points.txt"
    xyz.write_text("X,Y,Z\n121400.0,487400.0,1.5\n121401.0,487401.0,1.6\n")
    assert sniff.detect(obj) is sniff.OBJ
    assert sniff.detect(xyz) is sniff.XYZ
    obj.write_bytes(b"\xef\xbb\xbf" + obj.read_bytes())  # a byte order mark changes nothing
    assert sniff.detect(obj) is sniff.OBJ


def test_obj_named_xyz_is_read_as_a_model(tmp_path: Path) -> None:
    path = tmp_path / "model.xyz"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n")
    report = convert([path], tmp_path / "out", HERE)
    assert report.summary["counts"]["triangles"] == 4


def test_text_that_fits_obj_and_xyz_alike_goes_by_its_extension(tmp_path: Path) -> None:
    comments = "# exported 2024-05-01\n# nothing but comments so far\n"
    for suffix, expected in ((".obj", sniff.OBJ), (".xyz", sniff.XYZ)):
        path = tmp_path / f"ambiguous{suffix}"
        path.write_text(comments)
        assert sniff.detect(path) is expected
    path = tmp_path / "ambiguous.txt"
    path.write_text(comments)
    with pytest.raises(UnsupportedFormatError, match=r"cannot tell the format of ambiguous\.txt"):
        sniff.detect(path)


def test_unrecognised_content_is_refused_with_the_supported_list(tmp_path: Path) -> None:
    blob = tmp_path / "blob.glb"
    blob.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(UnsupportedFormatError) as caught:
        sniff.detect(blob)
    assert str(caught.value) == (
        "cannot tell the format of blob.glb from its content (it is not what its .glb name "
        f"says, nor any other supported format; supported: {SUPPORTED})"
    )
    assert caught.value.detected is None
    notes = tmp_path / "notes"
    notes.write_text("hello there\n")
    with pytest.raises(InputError) as wrapped:
        convert([notes], tmp_path / "out")
    assert "cannot tell the format of notes" in str(wrapped.value)
    assert "unsupported input format '(no extension)'" in str(wrapped.value)
    assert SUPPORTED in str(wrapped.value)


def test_an_unreadable_file_is_a_tiles_error(tmp_path: Path) -> None:
    with pytest.raises(TilesError, match="cannot read the file"):
        sniff.detect(tmp_path / "missing.glb")
    assert sniff.detect_or_none(tmp_path / "missing.glb") is None
