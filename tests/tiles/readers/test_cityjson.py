"""CityJSON (3DBAG layout) to tiles: attributes, LoD choice, orientation, placement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.tiles.support import ASSETS, accessor, all_glbs, content_positions, read_glb
from tests.validators.gltf import assert_valid_glb
from tiles.convert import ConvertOptions, InputError, convert
from tiles.crs import Transformer, ecef_to_geodetic

SAMPLE = ASSETS / "buildings.city.json"


def test_buildings_keep_the_attributes_of_their_parent_building(tmp_path: Path) -> None:
    report = convert([SAMPLE], tmp_path / "out")
    assert report.summary["counts"]["features"] == 2
    (glb,) = all_glbs(tmp_path / "out")
    document, _ = read_glb(glb)
    schema = document["extensions"]["EXT_structural_metadata"]["schema"]["classes"]["feature"]
    names = {p["name"] for p in schema["properties"].values()}
    assert {
        "identificatie",
        "oorspronkelijkbouwjaar",
        "b3_h_dak_max",
        "id",
        "type",
        "parent",
    } <= names
    assert_valid_glb([glb])


def test_highest_lod_by_default_and_another_on_request(tmp_path: Path) -> None:
    highest = convert([SAMPLE], tmp_path / "a")
    block = convert([SAMPLE], tmp_path / "b", ConvertOptions(cityjson_lod="1.2"))
    assert highest.summary["counts"]["triangles"] == 32  # gabled LoD 2.2 houses
    assert block.summary["counts"]["triangles"] == 24  # LoD 1.2 blocks: 6 quads each


def test_surfaces_face_outwards(tmp_path: Path) -> None:
    convert([SAMPLE], tmp_path / "out")
    (glb,) = all_glbs(tmp_path / "out")
    document, binary = read_glb(glb)
    by_material: dict[str, Any] = {}
    for primitive in document["meshes"][0]["primitives"]:
        name = document["materials"][primitive["material"]]["name"]
        by_material[name] = accessor(document, binary, primitive["attributes"]["NORMAL"])
    # Vertex data stays in the ENU frame (the node matrix turns it y up): up is the z component.
    assert (by_material["roof"][:, 2] > 0.3).all()
    assert (by_material["ground"][:, 2] < -0.99).all()
    assert (np.abs(by_material["wall"][:, 2]) < 1e-3).all()


def test_ground_floor_stands_at_nap_plus_quasi_geoid(tmp_path: Path) -> None:
    convert([SAMPLE], tmp_path / "out")
    points = np.concatenate([p for _, p in content_positions(tmp_path / "out")])
    _, _, h = ecef_to_geodetic(points[:, 0], points[:, 1], points[:, 2])
    _, _, expected = Transformer.from_crs("EPSG:7415", "EPSG:4979").transform(
        [111_790.0], [481_140.0], [-3.6]
    )
    assert expected is not None
    assert h.min() == pytest.approx(expected[0], abs=0.01)  # about 39.5 m, not -3.6 m


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (
            {"type": "CityJSON", "version": "1.0", "CityObjects": {}, "vertices": []},
            "version '1.0'",
        ),
        (
            {"type": "CityJSON", "version": "2.0", "CityObjects": {}, "vertices": [[0, 0, 0]]},
            "no CityObjects",
        ),
        (
            {
                "type": "CityJSON",
                "version": "2.0",
                "CityObjects": {
                    "a": {
                        "type": "Building",
                        "geometry": [{"type": "Solid", "lod": "1", "boundaries": [[[[0, 1, 99]]]]}],
                    }
                },
                "vertices": [[0, 0, 0], [1, 0, 0], [0, 1, 0]],
            },
            "malformed geometry",
        ),
    ],
)
def test_bad_cityjson_is_refused_with_the_file_named(
    tmp_path: Path, document: dict[str, Any], fragment: str
) -> None:
    path = tmp_path / "bad.city.json"
    path.write_text(json.dumps(document))
    with pytest.raises(InputError) as caught:
        convert([path], tmp_path / "out", ConvertOptions(crs="EPSG:7415"))
    assert "bad.city.json" in str(caught.value)
    assert fragment in str(caught.value)
    assert not (tmp_path / "out").exists()
