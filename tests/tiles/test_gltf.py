"""The GLB writer: valid glTF 2.0 with EXT_mesh_features and EXT_structural_metadata."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.tiles.support import png_bytes, split_glb
from tests.validators.gltf import assert_valid_glb, validate_glb
from tiles.errors import TilesError
from tiles.gltf import Material, Primitive, PropertyTable, Texture, property_identifiers, write_glb


def read_glb(data: bytes) -> tuple[dict[str, Any], bytes]:
    magic, version, total = struct.unpack_from("<4sII", data)
    assert (magic, version, total) == (b"glTF", 2, len(data))
    return split_glb(data)


def quad(offset: float, feature: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    positions = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=float) + offset
    return positions, np.array([[0, 1, 2], [0, 2, 3]]), np.full(4, feature)


def two_features(tmp_path: Path) -> Path:
    p0, i0, f0 = quad(0.0, 0)
    p1, i1, f1 = quad(5.0, 1)
    primitive = Primitive(
        positions=np.vstack([p0, p1]) + [1000.0, 2000.0, 3.0],
        indices=np.vstack([i0, i1 + 4]),
        normals=np.tile([0.0, 0.0, 2.0], (8, 1)),
        uvs=np.tile([[0, 0], [1, 0], [1, 1], [0, 1]], (2, 1)),
        feature_ids=np.concatenate([f0, f1]),
        material=Material(name="red", texture=Texture(png_bytes(), "image/png")),
    )
    table = PropertyTable(
        2,
        {
            "name": ["lamp post", "bench"],
            "height (m)": [6.5, 0.8],
            "lit": [True, False],
            "tags": [["a"], None],
        },
    )
    path = tmp_path / "two.glb"
    path.write_bytes(write_glb([primitive], center=(1000.0, 2000.0, 3.0), properties=table))
    return path


def test_written_glb_passes_the_khronos_validator(tmp_path: Path) -> None:
    path = two_features(tmp_path)
    assert_valid_glb([path])
    (report,) = validate_glb([path])
    assert report["warnings"] == 0, report


def test_features_and_properties_are_declared(tmp_path: Path) -> None:
    document, _ = read_glb(two_features(tmp_path).read_bytes())
    primitive = document["meshes"][0]["primitives"][0]
    feature_ids = primitive["extensions"]["EXT_mesh_features"]["featureIds"][0]
    assert feature_ids == {"featureCount": 2, "attribute": 0, "propertyTable": 0}
    metadata = document["extensions"]["EXT_structural_metadata"]
    properties = metadata["schema"]["classes"]["feature"]["properties"]
    assert properties["height__m_"] == {
        "name": "height (m)",
        "type": "SCALAR",
        "componentType": "FLOAT64",
    }
    assert properties["lit"]["type"] == "BOOLEAN"
    assert properties["tags"]["type"] == "STRING"
    assert metadata["propertyTables"][0]["count"] == 2


def test_positions_are_relative_to_the_center_and_the_root_node_is_y_up(tmp_path: Path) -> None:
    document, _ = read_glb(two_features(tmp_path).read_bytes())
    position = document["accessors"][
        document["meshes"][0]["primitives"][0]["attributes"]["POSITION"]
    ]
    assert position["min"] == [0.0, 0.0, 0.0]
    assert position["max"] == [6.0, 6.0, 5.0]
    matrix = np.array(document["nodes"][0]["matrix"]).reshape(4, 4).T
    # ENU (x, y, z) relative to the center -> glTF (x, z, -y), translated by the center.
    np.testing.assert_allclose(matrix @ [1.0, 2.0, 3.0, 1.0], [1001.0, 6.0, -2002.0, 1.0])


def test_points_with_rgb_colours_are_valid(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    primitive = Primitive(
        positions=rng.uniform(-10, 10, (1000, 3)),
        colors=rng.integers(0, 256, (1000, 3), dtype=np.uint8),
        material=Material(unlit=True),
    )
    path = tmp_path / "points.glb"
    path.write_bytes(write_glb([primitive]))
    assert_valid_glb([path])


def test_property_identifiers_are_unique_and_valid() -> None:
    idents = property_identifiers(["a b", "a_b", "1st", "", "ok"])
    assert list(idents.values()) == ["a_b", "a_b_2", "_1st", "_", "ok"]


@pytest.mark.parametrize(
    ("positions", "indices", "message"),
    [
        (np.zeros((0, 3)), None, "non-empty"),
        (np.array([[0.0, np.nan, 0.0]]), None, "NaN"),
        (np.zeros((3, 3)), np.array([[0, 1, 5]]), "outside its vertices"),
    ],
)
def test_bad_geometry_is_refused(
    positions: np.ndarray, indices: np.ndarray | None, message: str
) -> None:
    with pytest.raises(TilesError, match=message):
        write_glb([Primitive(positions=positions, indices=indices)])
