"""Helpers for tiles tests: sample inputs (the repository's assets, generated files), and our
tilesets read back the way a 3D Tiles client does, to check where things land."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import laspy
import numpy as np
import pyproj
import trimesh
from PIL import Image

ASSETS = Path(__file__).resolve().parents[2] / "assets"
RD_CRS = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::28992"}}

# glTF y up -> 3D Tiles z up, applied by clients to every glTF content.
Y_UP_TO_Z_UP = np.array([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=float)

_COMPONENTS = {5126: np.float32, 5125: np.uint32, 5123: np.uint16, 5121: np.uint8}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


# -- inputs ---------------------------------------------------------------------------------


def square(x: float, y: float, size: float = 10.0) -> dict[str, Any]:
    """A GeoJSON polygon: the square of ``size`` with its south-west corner at (x, y)."""
    ring = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


def tetrahedron() -> trimesh.Trimesh:
    """A closed mesh of four triangles, one vertex at (1, 2, 3)."""
    return trimesh.Trimesh(
        vertices=[[1.0, 2.0, 3.0], [0, 0, 0], [1, 0, 0], [0, 1, 0]],
        faces=[[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]],
    )


def tetrahedron_glb(path: Path) -> Path:
    tetrahedron().export(path)
    return path


def png_bytes() -> bytes:
    """A 4 x 4 red PNG image."""
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_las(
    path: Path,
    xyz: np.ndarray,
    crs: int | None = 7415,
    *,
    white: bool = False,
    compress: bool = False,
) -> Path:
    """The points as LAS 1.4 (point format 3, millimetres) with ``crs`` in the header; white
    colours with ``white``; LAZ with ``compress``, whatever the name says."""
    header = laspy.LasHeader(point_format=3, version="1.4")
    header.offsets = xyz.min(axis=0)
    header.scales = [0.001, 0.001, 0.001]
    if crs is not None:
        header.add_crs(pyproj.CRS.from_epsg(crs))
    las = laspy.LasData(header)
    las.x, las.y, las.z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    if white:
        las.red = las.green = las.blue = np.full(len(xyz), 65535, dtype=np.uint16)
    with path.open("wb") as handle:  # a path would let laspy decide by its extension
        las.write(handle, do_compress=compress)
    return path


# -- outputs read back ----------------------------------------------------------------------


def split_glb(data: bytes) -> tuple[dict[str, Any], bytes]:
    """A GLB's JSON document and its binary chunk."""
    json_length = struct.unpack_from("<I", data, 12)[0]
    document = json.loads(data[20 : 20 + json_length])
    return document, data[20 + json_length + 8 :]


def read_glb(path: Path) -> tuple[dict[str, Any], bytes]:
    return split_glb(path.read_bytes())


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


# -- large point clouds ---------------------------------------------------------------------

#: RD New (EPSG:28992) near Amersfoort, the origin of the RD grid.
AMERSFOORT_RD = (155_000.0, 463_000.0)


def amersfoort_laz(path: Path, count: int, seed: int = 7) -> Path:
    """``count`` random points in a 200 x 200 m square at :data:`AMERSFOORT_RD`, NAP heights
    -1..20 m, white, as LAZ with EPSG:7415 in the header (lazrs writes 50,000-point chunks)."""
    rng = np.random.default_rng(seed)
    x0, y0 = AMERSFOORT_RD
    xyz = np.column_stack(
        [
            rng.uniform(x0, x0 + 200, count),
            rng.uniform(y0, y0 + 200, count),
            rng.uniform(-1, 20, count),
        ]
    )
    return write_las(path, xyz, white=True, compress=True)


def laz_chunk_size(path: Path) -> int:
    """The points per chunk of a LAZ file, from its LASzip VLR."""
    with laspy.open(path) as reader:
        (vlr,) = [v for v in reader.header.vlrs if v.user_id == "laszip encoded"]
    size: int = struct.unpack_from("<I", vlr.record_data, 12)[0]
    return size


# -- decompression bombs --------------------------------------------------------------------


def blank_png(width: int, height: int) -> bytes:
    """A 1-bit black PNG of ``width`` x ``height``, written row by row (never held whole):
    30,000 x 30,000 is about 110 KB and would decode to 900 million pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    rows = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def glb_bytes(document: dict[str, Any], binary: bytes) -> bytes:
    text = json.dumps(document).encode("utf-8")
    text += b" " * (-len(text) % 4)
    binary += b"\x00" * (-len(binary) % 4)
    length = 12 + 8 + len(text) + 8 + len(binary)
    return (
        struct.pack("<III", 0x46546C67, 2, length)
        + struct.pack("<II", len(text), 0x4E4F534A)
        + text
        + struct.pack("<II", len(binary), 0x004E4942)
        + binary
    )


def bench_with_textures(*images: bytes) -> bytes:
    """The repository's textured bench (bench.glb) with its texture replaced by ``images[0]``
    and the others added as images of new materials."""
    document, binary = split_glb((ASSETS / "bench.glb").read_bytes())
    for k, image in enumerate(images):
        binary += b"\x00" * (-len(binary) % 4)
        document["bufferViews"].append(
            {"buffer": 0, "byteOffset": len(binary), "byteLength": len(image)}
        )
        binary += image
        view = len(document["bufferViews"]) - 1
        if k == 0:
            document["images"][0] = {"bufferView": view, "mimeType": "image/png"}
        else:
            document["images"].append({"bufferView": view, "mimeType": "image/png"})
            document["textures"].append({"source": len(document["images"]) - 1})
    document["buffers"][0]["byteLength"] = len(binary)
    return glb_bytes(document, binary)


def lying_header(path: Path, claimed: int, *, compress: bool) -> Path:
    """A real LAS/LAZ of 1,000 points whose header claims ``claimed`` (LAS 1.4: the 64-bit
    count, and the legacy 32-bit one where it fits)."""
    rng = np.random.default_rng(3)
    xyz = np.column_stack(
        [rng.uniform(155_000, 155_100, 1000), rng.uniform(463_000, 463_100, 1000), np.zeros(1000)]
    )
    write_las(path, xyz, compress=compress)
    data = bytearray(path.read_bytes())
    struct.pack_into("<Q", data, 247, claimed)  # number of point records (LAS 1.4)
    struct.pack_into("<I", data, 107, claimed if claimed < 1 << 32 else 0)
    path.write_bytes(data)
    with laspy.open(path) as reader:
        assert reader.header.point_count == claimed
    return path
