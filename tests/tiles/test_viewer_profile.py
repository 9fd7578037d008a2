"""Every kind of converter output stays inside what the viewer's renderer (3DTilesRendererJS
0.5) reads, as docs/viewer.md lists it: one content per tile, glTF binary content, feature ids
and property tables of FLOAT64, BOOLEAN and STRING only, and no glTF extension it lacks."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tiles.convert import ConvertOptions, convert

ASSETS = Path(__file__).resolve().parents[2] / "assets"
#: glTF extensions the renderer handles (GLTFLoader and the GLTFExtensionsPlugin).
HANDLED_EXTENSIONS = {"EXT_mesh_features", "EXT_structural_metadata", "KHR_materials_unlit"}
PROPERTY_TYPES = {("SCALAR", "FLOAT64"), ("BOOLEAN", None), ("STRING", None)}
SAMPLES = [
    ("buildings.city.json", ConvertOptions()),
    ("cables_pipes.geojson", ConvertOptions()),
    ("parking_zones.geojson", ConvertOptions()),
    ("tree_scan.laz", ConvertOptions()),
    ("lamp_post.glb", ConvertOptions(origin=(4.7538, 52.3166, 42.0), heading_deg=90.0)),
]


def tiles_of(tile: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield tile
    for child in tile.get("children", []):
        yield from tiles_of(child)


def glb_json(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    magic, version, _ = struct.unpack_from("<4sII", data, 0)
    assert (magic, version) == (b"glTF", 2), path.name
    length, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    document: dict[str, Any] = json.loads(data[20 : 20 + length])
    return document


@pytest.mark.parametrize(("name", "options"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_output_uses_only_what_the_viewer_reads(
    tmp_path: Path, name: str, options: ConvertOptions
) -> None:
    out = tmp_path / "out"
    convert([ASSETS / name], out, options)
    pending, contents = [out / "tileset.json"], []
    while pending:
        tileset = json.loads(pending.pop().read_text(encoding="utf-8"))
        assert tileset["asset"]["version"] in {"1.0", "1.1"}
        for tile in tiles_of(tileset["root"]):
            assert "contents" not in tile  # multiple contents are not read
            uri = tile.get("content", {}).get("uri")
            if uri is None:
                continue
            assert uri.endswith((".glb", ".json")), uri
            (pending if uri.endswith(".json") else contents).append(out / uri)
    assert contents, "no content at all"
    for path in contents:
        document = glb_json(path)
        assert set(document.get("extensionsUsed", [])) <= HANDLED_EXTENSIONS, path.name
        assert not document.get("extensionsRequired"), path.name
        metadata = document.get("extensions", {}).get("EXT_structural_metadata")
        if metadata is None:
            continue
        for cls in metadata["schema"]["classes"].values():
            for prop in cls["properties"].values():
                assert (prop["type"], prop.get("componentType")) in PROPERTY_TYPES, prop
