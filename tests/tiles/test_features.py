"""Feature ids and features.json: every feature of a mesh or feature tileset is found by its id
(the ``id``, else ``name`` property, else its index), with the centre of its bounding box and a
point on the feature itself (the point of its surface nearest that centre)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tiles.convert
from tests.tiles.support import ASSETS, RD_CRS, all_glbs, read_glb, square, write_las
from tests.validators.gltf import assert_valid_glb
from tiles.convert import ConvertOptions, convert
from tiles.crs import EnuFrame, Transformer
from tiles.features import (
    FEATURES_FILE,
    assign_ids,
    closest_on_triangles,
    feature_points,
    id_text,
    index_features,
    write_features,
)
from tiles.gltf import Material
from tiles.model import FeatureModel, MeshPart


def geojson(path: Path, features: list[dict[str, Any]]) -> Path:
    document = {"type": "FeatureCollection", "crs": RD_CRS, "features": features}
    path.write_text(json.dumps(document))
    return path


def feature(geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def features_of(out: Path) -> list[dict[str, Any]]:
    document = json.loads((out / FEATURES_FILE).read_text(encoding="utf-8"))
    assert set(document) == {"features"}
    found: list[dict[str, Any]] = document["features"]
    return found


def by_id(out: Path) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in features_of(out)}


def geodetic_of_rd(x: float, y: float, nap: float) -> tuple[float, float, float]:
    """ETRS89 lon, lat and ellipsoidal h of an RD New + NAP point, through tiles.crs."""
    lon, lat, h = Transformer.from_crs("EPSG:7415", "EPSG:4979").transform([x], [y], [nap])
    assert h is not None
    return float(lon[0]), float(lat[0]), float(h[0])


def metres_between(a: list[float] | tuple[float, ...], b: list[float] | tuple[float, ...]) -> float:
    """The distance (m) between two (lon, lat, h) points a few kilometres apart at most."""
    frame = EnuFrame(*a)
    e, n, u = frame.from_geodetic([b[0]], [b[1]], [b[2]])
    return float(np.sqrt(e[0] ** 2 + n[0] ** 2 + u[0] ** 2))


def rd_of(point: list[float]) -> np.ndarray:
    """RD New x, y and NAP height of an ETRS89 lon, lat, h point, through tiles.crs."""
    x, y, nap = Transformer.from_crs("EPSG:4937", "EPSG:7415").transform(
        [point[0]], [point[1]], [point[2]]
    )
    assert nap is not None
    return np.array([x[0], y[0], nap[0]])


def distance_to_polyline(point: np.ndarray, vertices: np.ndarray) -> float:
    """The distance (same units) from ``point`` to the polyline through ``vertices`` (n, 3)."""
    a, b = vertices[:-1], vertices[1:]
    t = np.clip(((point - a) * (b - a)).sum(axis=1) / ((b - a) ** 2).sum(axis=1), 0.0, 1.0)
    return float(np.linalg.norm(a + (b - a) * t[:, None] - point, axis=1).min())


def view(document: dict[str, Any], binary: bytes, index: int) -> bytes:
    found = document["bufferViews"][index]
    start = found.get("byteOffset", 0)
    return binary[start : start + found["byteLength"]]


def string_column(glb: Path, name: str) -> list[str]:
    """The values of a STRING property of a GLB's property table, as a client decodes them."""
    document, binary = read_glb(glb)
    table = document["extensions"]["EXT_structural_metadata"]["propertyTables"][0]
    column = table["properties"][name]
    offsets = np.frombuffer(view(document, binary, column["stringOffsets"]), dtype="<u4")
    values = view(document, binary, column["values"])
    return [values[offsets[i] : offsets[i + 1]].decode() for i in range(table["count"])]


# -- the id of a feature --------------------------------------------------------------------


def test_the_id_is_the_id_property_else_the_name_else_the_index() -> None:
    properties: list[dict[str, Any]] = [
        {"id": "zone-1", "name": "P1"},
        {"name": "lamp 17"},
        {"capacity": 40},
    ]
    written, ids = assign_ids(properties)
    assert ids == ["zone-1", "lamp 17", "2"]
    assert written[0] is properties[0]  # nothing to change
    assert written[1] is properties[1]
    assert written[2] == {"capacity": 40, "id": "2"}  # picking the feature yields its id
    assert properties[2] == {"capacity": 40}  # the caller's dict is left alone


def test_null_or_empty_ids_count_as_absent() -> None:
    _, ids = assign_ids([{"id": None, "name": "kerb"}, {"id": "", "name": ""}, {"name": None}])
    assert ids == ["kerb", "1", "2"]


def test_a_numeric_id_is_written_as_the_text_that_names_it() -> None:
    written, ids = assign_ids([{"id": 17}, {"id": 5.0}, {"id": 2.5}, {"name": True}])
    assert ids == ["17", "5", "2.5", "true"]
    assert [w.get("id", w.get("name")) for w in written] == ids


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ("'; DROP TABLE asset_features; --", "'; DROP TABLE asset_features; --"),
        (2**60 + 1, "1152921504606846977"),
        (1e300, "1e+300"),
        ([1, "a"], '[1,"a"]'),
        ({"k": 1}, '{"k":1}'),
        (None, None),
        ("", None),
    ],
)
def test_id_text_of_property_values(value: Any, text: str | None) -> None:
    assert id_text(value) == text


# -- features.json of a conversion ----------------------------------------------------------


def test_geojson_features_are_listed_by_id_at_the_centre_of_their_box(tmp_path: Path) -> None:
    features = [
        {**feature(square(121_400.0, 487_400.0), base=-1.5, height=3.0), "id": "zone-a"},
        {**feature(square(121_450.0, 487_420.0, 20.0), base=0.0, height=8.0), "id": 42},
    ]
    out = tmp_path / "out"
    report = convert([geojson(tmp_path / "z.geojson", features)], out)
    assert report.warnings == []
    found = by_id(out)
    assert list(found) == ["zone-a", "42"]
    # The centre of a square prism: the middle of the square, half way up (RD New + NAP).
    expected = geodetic_of_rd(121_405.0, 487_405.0, 0.0)
    assert metres_between(found["zone-a"]["center"], expected) < 0.01
    expected = geodetic_of_rd(121_460.0, 487_430.0, 4.0)
    assert metres_between(found["42"]["center"], expected) < 0.01
    west, south, east, north, hmin, hmax = found["zone-a"]["bbox"]
    sw = geodetic_of_rd(121_400.0, 487_400.0, -1.5)
    ne = geodetic_of_rd(121_410.0, 487_410.0, 1.5)
    assert [west, south, east, north] == pytest.approx([sw[0], sw[1], ne[0], ne[1]], abs=2e-6)
    assert [hmin, hmax] == pytest.approx([sw[2], ne[2]], abs=0.01)
    assert west < found["zone-a"]["center"][0] < east
    assert south < found["zone-a"]["center"][1] < north


def test_positions_are_rounded_to_a_nanodegree_and_a_millimetre(tmp_path: Path) -> None:
    out = tmp_path / "out"
    convert([ASSETS / "cables_pipes.geojson"], out)
    for item in features_of(out):
        for value in (*item["point"][:2], *item["center"][:2], *item["bbox"][:4]):
            assert round(value, 9) == value
        for value in (item["point"][2], item["center"][2], *item["bbox"][4:]):
            assert round(value, 3) == value


def test_the_point_of_an_l_shaped_cable_lies_on_the_cable(tmp_path: Path) -> None:
    out = tmp_path / "out"
    convert([ASSETS / "cables_pipes.geojson"], out)
    cable = by_id(out)["utility-3"]
    # utility-3: a 50 mm cable 0.7 m below ground at NAP -3.6, so its axis is at NAP -4.3.
    axis = np.array([[111_745.0, 481_100.0, -4.3], [111_830.0, 481_100.0, -4.3],
                     [111_830.0, 481_180.0, -4.3]])  # fmt: skip
    radius = 0.025
    point = rd_of(cable["point"])
    assert distance_to_polyline(point, axis) == pytest.approx(radius, abs=0.01)
    # The centre of its box, by contrast, lies in the corner's open space, 40 m off the cable.
    assert distance_to_polyline(rd_of(cable["center"]), axis) > 39.0
    west, south, east, north, hmin, hmax = cable["bbox"]
    assert west <= cable["point"][0] <= east
    assert south <= cable["point"][1] <= north
    assert hmin <= cable["point"][2] <= hmax


def test_every_point_lies_within_its_features_box(tmp_path: Path) -> None:
    out = tmp_path / "out"
    convert([ASSETS / "cables_pipes.geojson"], out)
    convert([ASSETS / "parking_zones.geojson"], tmp_path / "zones")
    for item in [*features_of(out), *features_of(tmp_path / "zones")]:
        west, south, east, north, hmin, hmax = item["bbox"]
        lon, lat, h = item["point"]
        assert west - 1e-9 <= lon <= east + 1e-9, item
        assert south - 1e-9 <= lat <= north + 1e-9, item
        assert hmin - 0.001 <= h <= hmax + 0.001, item


def test_the_point_of_a_zone_lies_on_its_face_over_the_centre(tmp_path: Path) -> None:
    out = tmp_path / "out"
    convert([ASSETS / "parking_zones.geojson"], out)
    # zone-1: 111750..111810 x 481120..481145 (RD New), a slab from NAP -3.6 to -3.45.
    point = rd_of(by_id(out)["zone-1"]["point"])
    assert point[:2] == pytest.approx([111_780.0, 481_132.5], abs=0.01)
    assert min(abs(point[2] + 3.6), abs(point[2] + 3.45)) < 0.005


def test_features_without_id_or_name_are_found_by_their_index_also_in_the_tiles(
    tmp_path: Path,
) -> None:
    features = [
        feature(square(121_400.0, 487_400.0), height=2.0),
        feature(square(121_420.0, 487_400.0), height=2.0, name="named"),
        feature(square(121_440.0, 487_400.0), height=2.0),
    ]
    out = tmp_path / "out"
    convert([geojson(tmp_path / "n.geojson", features)], out)
    assert [f["id"] for f in features_of(out)] == ["0", "named", "2"]
    (glb,) = all_glbs(out)
    # What a client shows on picking: the id property, else the name.
    picked = [
        i or n for i, n in zip(string_column(glb, "id"), string_column(glb, "name"), strict=True)
    ]
    assert picked == ["0", "named", "2"]
    assert_valid_glb([glb])


def test_the_id_of_inputs_combined_is_their_index_in_the_conversion(tmp_path: Path) -> None:
    first = geojson(tmp_path / "a.geojson", [feature(square(121_400.0, 487_400.0), height=1.0)])
    second = geojson(tmp_path / "b.geojson", [feature(square(121_420.0, 487_400.0), height=1.0)])
    out = tmp_path / "out"
    convert([first, second], out)
    assert [f["id"] for f in features_of(out)] == ["0", "1"]


def test_duplicate_ids_keep_the_first_feature_and_warn_naming_them(tmp_path: Path) -> None:
    features = [
        {**feature(square(121_400.0, 487_400.0), height=1.0), "id": "kerb"},
        {**feature(square(121_500.0, 487_400.0), height=1.0), "id": "kerb"},
        {**feature(square(121_600.0, 487_400.0), height=1.0), "id": "kerb"},
        {**feature(square(121_700.0, 487_400.0), height=1.0), "id": "gully"},
        {**feature(square(121_800.0, 487_400.0), height=1.0), "id": "gully"},
        {**feature(square(121_900.0, 487_400.0), height=1.0), "id": "pole"},
    ]
    out = tmp_path / "out"
    report = convert([geojson(tmp_path / "d.geojson", features)], out)
    found = by_id(out)
    assert list(found) == ["kerb", "gully", "pole"]
    first = geodetic_of_rd(121_405.0, 487_405.0, 0.5)
    assert metres_between(found["kerb"]["center"], first) < 0.01
    (warning,) = [w for w in report.warnings if "more than one feature" in w]
    assert warning.startswith("2 feature ids")
    assert "'kerb', 'gully'" in warning
    assert "pole" not in warning
    assert "leaves out 3 others" in warning


def test_many_duplicates_are_counted_and_the_first_few_named(tmp_path: Path) -> None:
    features = [
        {**feature(square(121_000.0 + 20 * k, 487_400.0), height=1.0), "id": f"d{k // 2}"}
        for k in range(20)
    ]
    report = convert([geojson(tmp_path / "m.geojson", features)], tmp_path / "out")
    (warning,) = [w for w in report.warnings if "more than one feature" in w]
    assert warning.startswith("10 feature ids")
    assert "'d0', 'd1', 'd2', 'd3', 'd4', and 5 more" in warning
    assert "d5" not in warning


def test_cityjson_buildings_are_listed_by_their_city_object_ids(tmp_path: Path) -> None:
    sample = ASSETS / "buildings.city.json"
    out = tmp_path / "out"
    report = convert([sample], out)
    document = json.loads(sample.read_text())
    found = by_id(out)
    with_geometry = [k for k, o in document["CityObjects"].items() if o.get("geometry")]
    assert list(found) == with_geometry
    # Independently: the object's vertices through tiles.crs into the tileset's frame.
    frame = EnuFrame(*report.summary["origin"])
    scale = np.asarray(document["transform"]["scale"])
    translate = np.asarray(document["transform"]["translate"])
    vertices = np.asarray(document["vertices"], dtype=np.float64) * scale + translate
    for identifier in with_geometry:
        used: set[int] = set()
        stack: list[Any] = [
            g["boundaries"]
            for g in document["CityObjects"][identifier]["geometry"]
            if str(g["lod"]) == "2.2"
        ]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(item)
            else:
                used.add(int(item))
        rd = vertices[sorted(used)]
        x, y, z = Transformer.from_crs("EPSG:7415", "EPSG:4978").transform(
            rd[:, 0], rd[:, 1], rd[:, 2]
        )
        assert z is not None
        enu = np.column_stack(frame.from_ecef(x, y, z))
        middle = (enu.min(axis=0) + enu.max(axis=0)) / 2.0
        lon, lat, h = frame.to_geodetic(*middle)
        assert (
            metres_between(found[identifier]["center"], (float(lon), float(lat), float(h))) < 0.01
        )


def test_a_model_lists_its_mesh_nodes_by_name(tmp_path: Path) -> None:
    out = tmp_path / "out"
    convert([ASSETS / "lamp_post.glb"], out, ConvertOptions(origin=(4.761, 52.3095, 39.6)))
    found = by_id(out)
    assert set(found) == {"pole", "arm", "lamp head"}
    west, south, east, north, hmin, _ = found["pole"]["bbox"]
    assert hmin == pytest.approx(39.6, abs=0.01)  # the pole stands on the origin
    assert west < 4.761 < east
    assert south < 52.3095 < north


def test_point_clouds_have_no_features_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    xyz = np.column_stack(
        [
            rng.uniform(155_000, 155_010, 500),
            rng.uniform(463_000, 463_010, 500),
            rng.uniform(0, 2, 500),
        ]
    )
    out = tmp_path / "out"
    convert([write_las(tmp_path / "scan.las", xyz)], out)
    assert (out / "tileset.json").is_file()
    assert not (out / FEATURES_FILE).exists()


def test_a_failed_conversion_leaves_no_features_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(tiles.convert, "_write_tileset", fail)  # after features.json is written
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        convert([ASSETS / "parking_zones.geojson"], out)
    assert not out.exists()
    assert not list(tmp_path.rglob(FEATURES_FILE))


def test_a_reconversion_replaces_the_features_file_with_the_tileset(tmp_path: Path) -> None:
    out = tmp_path / "out"
    convert([ASSETS / "parking_zones.geojson"], out)
    convert([ASSETS / "cables_pipes.geojson"], out)
    assert all(i.startswith("utility-") for i in by_id(out))


# -- the index alone ------------------------------------------------------------------------


def _cube(centre: tuple[float, float, float], feature: int, size: float = 2.0) -> MeshPart:
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=float)
    faces = np.array([[0, 1, 2], [1, 3, 2], [4, 6, 5], [5, 6, 7]], dtype=np.int64)
    return MeshPart((corners - 0.5) * size + np.asarray(centre), faces, feature, Material())


def test_a_feature_of_several_parts_is_boxed_around_all_of_them() -> None:
    frame = EnuFrame(5.0, 52.0, 40.0)
    parts = [_cube((0.0, 0.0, 1.0), 0), _cube((10.0, 0.0, 1.0), 1), _cube((20.0, 0.0, 1.0), 0)]
    index = index_features(FeatureModel(parts, [{}, {}]), ["a", "b"], frame)
    assert index.ids == ["a", "b"]
    lon, lat, h = frame.to_geodetic([10.0], [0.0], [1.0])
    assert index.centers[0, :2] == pytest.approx([lon[0], lat[0]], abs=1e-9)
    assert index.centers[0, 2] == pytest.approx(h[0], abs=0.001)


def test_a_feature_without_geometry_is_not_listed() -> None:
    frame = EnuFrame(5.0, 52.0, 40.0)
    index = index_features(FeatureModel([_cube((0, 0, 0), 1)], [{}, {}]), ["a", "b"], frame)
    assert index.ids == ["b"]
    assert index.features.tolist() == [1]


def test_the_nearest_point_of_a_triangle_is_found_in_each_region() -> None:
    triangle = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 4.0, 0.0]])
    cases = {
        (1.0, 1.0, 5.0): (1.0, 1.0, 0.0),  # over the face
        (-2.0, -3.0, 1.0): (0.0, 0.0, 0.0),  # beyond corner a
        (7.0, -1.0, 0.0): (4.0, 0.0, 0.0),  # beyond corner b
        (-1.0, 9.0, 0.0): (0.0, 4.0, 0.0),  # beyond corner c
        (2.0, -5.0, 0.0): (2.0, 0.0, 0.0),  # beside edge ab
        (-5.0, 1.5, 2.0): (0.0, 1.5, 0.0),  # beside edge ac
        (4.0, 4.0, 0.0): (2.0, 2.0, 0.0),  # beside edge bc
    }
    targets = np.array(list(cases))
    found = closest_on_triangles(targets, np.repeat(triangle[None], len(cases), axis=0))
    assert found == pytest.approx(np.array(list(cases.values())), abs=1e-12)


def test_degenerate_triangles_give_their_nearest_point() -> None:
    targets = np.array([[5.0, 5.0, 5.0], [1.0, 3.0, 0.0]])
    point = np.array([[1.0, 2.0, 3.0]] * 3)
    segment = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    found = closest_on_triangles(targets, np.stack([point, segment]))
    assert found == pytest.approx(np.array([[1.0, 2.0, 3.0], [1.0, 0.0, 0.0]]), abs=1e-12)


def test_a_feature_without_triangles_gets_its_nearest_vertex() -> None:
    vertices = np.array([[0.0, 0.0, 0.0], [9.0, 0.0, 0.0], [9.0, 9.0, 0.0]])
    part = MeshPart(vertices, np.empty((0, 3), dtype=np.int64), 0, Material())
    found = feature_points([part], np.array([0]), np.array([[6.0, 5.0, 0.0]]))
    assert found.tolist() == [[9.0, 9.0, 0.0]]


def test_the_point_of_a_feature_of_several_parts_is_on_the_nearest_part() -> None:
    frame = EnuFrame(5.0, 52.0, 40.0)
    # Two cubes of feature 0 at x = 0 and x = 20: the box's centre (x = 10) lies between them.
    parts = [_cube((0.0, 0.0, 0.0), 0), _cube((20.0, 0.0, 0.0), 0), _cube((10.0, 0.0, 0.0), 1)]
    index = index_features(FeatureModel(parts, [{}, {}]), ["a", "b"], frame)
    e, n, u = frame.from_geodetic(*index.points.T)
    # Feature 0: the face of the first cube that faces the centre; feature 1 (one cube, centred
    # on the box's centre): the middle of one of its faces, 1 m off.
    assert [e[0], n[0], u[0]] == pytest.approx([1.0, 0.0, 0.0], abs=0.001)
    assert [abs(e[1] - 10.0), n[1], u[1]] == pytest.approx([1.0, 0.0, 0.0], abs=0.001)


def test_a_hundred_thousand_features_are_indexed_and_written_right(tmp_path: Path) -> None:
    count = 100_000
    rng = np.random.default_rng(1)
    frame = EnuFrame(4.9, 52.37, 43.0)
    centres = rng.uniform(-2_000, 2_000, (count, 3))
    parts = [_cube((float(c[0]), float(c[1]), float(c[2])), k) for k, c in enumerate(centres)]
    model = FeatureModel(parts, [{} for _ in range(count)])
    written, ids = assign_ids(model.properties)
    index = index_features(FeatureModel(parts, written), ids, frame)
    write_features(index, tmp_path)
    assert len(index.ids) == count
    lon, lat, h = frame.to_geodetic(centres[:, 0], centres[:, 1], centres[:, 2])
    assert np.abs(index.centers[:, 0] - lon).max() < 1e-8
    assert np.abs(index.centers[:, 1] - lat).max() < 1e-8
    assert np.abs(index.centers[:, 2] - h).max() < 0.001
    # Each point is on its cube (side 2 m): the middle of a face, 1 m from the centre.
    e, n, u = frame.from_geodetic(*index.points.T)
    offsets = np.column_stack([e, n, u]) - centres
    assert np.abs(np.linalg.norm(offsets, axis=1) - 1.0).max() < 0.002
    assert np.abs(np.abs(offsets).max(axis=1) - 1.0).max() < 0.002
    written_features = features_of(tmp_path)
    assert len(written_features) == count
    assert written_features[7]["point"] == pytest.approx(index.points[7].tolist(), abs=1e-12)


def test_ids_of_any_text_are_written_as_valid_json(tmp_path: Path) -> None:
    frame = EnuFrame(5.0, 52.0, 40.0)
    ids = ["\ud800 lone", '"quoted"\n', "<b>x</b>"]
    parts = [_cube((float(k), 0.0, 0.0), k) for k in range(3)]
    write_features(index_features(FeatureModel(parts, [{}, {}, {}]), ids, frame), tmp_path)
    assert [f["id"] for f in features_of(tmp_path)] == ids
