"""Reading our tilesets back, the way a 3D Tiles client does, to check where things land."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

# glTF y up -> 3D Tiles z up, applied by clients to every glTF content.
Y_UP_TO_Z_UP = np.array([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=float)

_COMPONENTS = {5126: np.float32, 5125: np.uint32, 5123: np.uint16, 5121: np.uint8}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


def read_glb(path: Path) -> tuple[dict[str, Any], bytes]:
    data = path.read_bytes()
    json_length = struct.unpack_from("<I", data, 12)[0]
    document = json.loads(data[20 : 20 + json_length])
    return document, data[20 + json_length + 8 :]


def accessor(document: dict[str, Any], binary: bytes, index: int) -> np.ndarray:
    a = document["accessors"][index]
    view = document["bufferViews"][a["bufferView"]]
    dtype = _COMPONENTS[a["componentType"]]
    width = _WIDTH[a["type"]]
    start = view.get("byteOffset", 0) + a.get("byteOffset", 0)
    values = np.frombuffer(binary, dtype=dtype, count=a["count"] * width, offset=start)
    return values.reshape(a["count"], width) if width > 1 else values


def tiles(tileset: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    stack = [tileset["root"]]
    while stack:
        tile = stack.pop()
        found.append(tile)
        stack.extend(tile.get("children", []))
    return found


def content_positions(out_dir: Path, enu: bool = False) -> list[tuple[dict[str, Any], np.ndarray]]:
    """For every tile with content: the tile and its vertex positions in ECEF metres (or in the
    root's ENU frame with ``enu=True``), as a client computes them."""
    tileset = json.loads((out_dir / "tileset.json").read_text())
    root = np.array(tileset["root"]["transform"]).reshape(4, 4).T
    result = []
    for tile in tiles(tileset):
        if "content" not in tile:
            continue
        document, binary = read_glb(out_dir / tile["content"]["uri"])
        node = np.array(document["nodes"][0]["matrix"]).reshape(4, 4).T
        chain = Y_UP_TO_Z_UP @ node if enu else root @ Y_UP_TO_Z_UP @ node
        points = []
        for primitive in document["meshes"][0]["primitives"]:
            p = accessor(document, binary, primitive["attributes"]["POSITION"]).astype(np.float64)
            h = np.column_stack([p, np.ones(len(p))]) @ chain.T
            points.append(h[:, :3])
        result.append((tile, np.concatenate(points)))
    return result


def all_glbs(out_dir: Path) -> list[Path]:
    return sorted((out_dir / "content").glob("*.glb"))
