"""Binary glTF 2.0 (GLB) writer for 3D Tiles 1.1 content.

Contracts:

- Geometry arrives in the tile's East-North-Up frame (metres, z up). The writer subtracts a
  ``center`` (stored as a translation, so float32 positions keep sub-millimetre precision) and puts
  the z-up to y-up rotation on the root node, as the 3D Tiles specification recommends: a 3D Tiles
  client applies y-up to z-up at run time and gets the ENU coordinates back.
- Per-feature IDs are the vertex attribute ``_FEATURE_ID_0`` (FLOAT, exact for up to 2^24 features)
  declared with ``EXT_mesh_features``; feature properties become one ``EXT_structural_metadata``
  property table, so a client can pick a feature and show its properties.
- Every vertex attribute is 4-byte aligned and every buffer view 8-byte aligned, as the glTF and
  metadata specifications require; normals are unit length; POSITION has min/max.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiles.errors import TilesError

FloatArray = NDArray[np.float64]

TRIANGLES = 4
POINTS = 0

_ARRAY_BUFFER = 34962
_ELEMENT_ARRAY_BUFFER = 34963
_FLOAT = 5126
_UNSIGNED_BYTE = 5121
_UNSIGNED_SHORT = 5123
_UNSIGNED_INT = 5125

# Column-major 4x4: (x, y, z) in ENU (z up) -> (x, z, -y) in glTF (y up).
Z_UP_TO_Y_UP = np.array(
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Texture:
    """An encoded image (PNG or JPEG bytes) used as base colour texture."""

    data: bytes
    mime_type: str


@dataclass(frozen=True)
class Material:
    """A metallic-roughness material; ``base_color`` is linear RGBA in 0..1."""

    name: str = "default"
    base_color: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 1.0)
    metallic: float = 0.0
    roughness: float = 1.0
    texture: Texture | None = None
    double_sided: bool = False
    unlit: bool = False


@dataclass
class Primitive:
    """One draw call: triangles (``indices`` (m, 3)) or points (``indices`` None).

    ``positions`` are ENU metres (n, 3); ``normals`` (n, 3) optional (made unit length here);
    ``uvs`` (n, 2) optional; ``colors`` (n, 3 or 4) uint8 optional; ``feature_ids`` (n,)
    optional, integers from 0 to feature count - 1.
    """

    positions: FloatArray
    material: Material = field(default_factory=Material)
    indices: NDArray[np.integer[Any]] | None = None
    normals: NDArray[np.floating[Any]] | None = None
    uvs: NDArray[np.floating[Any]] | None = None
    colors: NDArray[np.uint8] | None = None
    feature_ids: NDArray[np.integer[Any]] | None = None

    @property
    def mode(self) -> int:
        return POINTS if self.indices is None else TRIANGLES


@dataclass
class PropertyTable:
    """Feature properties: one list per property, each as long as there are features."""

    count: int
    columns: Mapping[str, Sequence[Any]]


class _Buffer:
    """Accumulates the binary chunk and its buffer views, 8-byte aligned."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.length = 0
        self.views: list[dict[str, Any]] = []

    def add(self, data: bytes, target: int | None = None, stride: int | None = None) -> int:
        padding = (-self.length) % 8
        if padding:
            self.chunks.append(b"\0" * padding)
            self.length += padding
        view: dict[str, Any] = {"buffer": 0, "byteOffset": self.length, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        if stride is not None:
            view["byteStride"] = stride
        self.views.append(view)
        self.chunks.append(data)
        self.length += len(data)
        return len(self.views) - 1

    def data(self) -> bytes:
        body = b"".join(self.chunks)
        return body + b"\0" * ((-len(body)) % 4)


@dataclass
class _Document:
    buffer: _Buffer = field(default_factory=_Buffer)
    accessors: list[dict[str, Any]] = field(default_factory=list)
    materials: list[dict[str, Any]] = field(default_factory=list)
    material_index: dict[Material, int] = field(default_factory=dict)
    textures: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    extensions_used: set[str] = field(default_factory=set)

    def accessor(self, array: NDArray[Any], component: int, kind: str, **extra: Any) -> int:
        target = extra.pop("target", _ARRAY_BUFFER)
        view = self.buffer.add(np.ascontiguousarray(array).tobytes(), target=target)
        accessor: dict[str, Any] = {
            "bufferView": view,
            "componentType": component,
            "count": int(array.shape[0]),
            "type": kind,
        }
        accessor.update(extra)
        self.accessors.append(accessor)
        return len(self.accessors) - 1

    def material(self, material: Material) -> int:
        if material in self.material_index:
            return self.material_index[material]
        pbr: dict[str, Any] = {
            "baseColorFactor": [float(c) for c in material.base_color],
            "metallicFactor": float(material.metallic),
            "roughnessFactor": float(material.roughness),
        }
        if material.texture is not None:
            view = self.buffer.add(material.texture.data)
            self.images.append({"bufferView": view, "mimeType": material.texture.mime_type})
            self.textures.append({"sampler": 0, "source": len(self.images) - 1})
            pbr["baseColorTexture"] = {"index": len(self.textures) - 1}
        entry: dict[str, Any] = {"name": material.name, "pbrMetallicRoughness": pbr}
        if material.base_color[3] < 1.0:
            entry["alphaMode"] = "BLEND"
        if material.double_sided:
            entry["doubleSided"] = True
        if material.unlit:
            entry["extensions"] = {"KHR_materials_unlit": {}}
            self.extensions_used.add("KHR_materials_unlit")
        self.materials.append(entry)
        self.material_index[material] = len(self.materials) - 1
        return self.material_index[material]


def _unit_normals(normals: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
    n = np.asarray(normals, dtype=np.float64)
    length = np.linalg.norm(n, axis=1)
    bad = ~(length > 1e-12)
    n = n / np.where(bad, 1.0, length)[:, None]
    n[bad] = (0.0, 0.0, 1.0)
    unit: NDArray[np.float32] = n.astype(np.float32)
    return unit


def _primitive(
    doc: _Document, primitive: Primitive, center: FloatArray, features: int
) -> dict[str, Any]:
    positions = np.asarray(primitive.positions, dtype=np.float64) - center
    if positions.ndim != 2 or positions.shape[1] != 3 or positions.shape[0] == 0:
        raise TilesError("a glTF primitive needs a non-empty (n, 3) position array")
    if not np.isfinite(positions).all():
        raise TilesError("a glTF primitive has NaN or infinite positions")
    p32 = positions.astype(np.float32)
    attributes: dict[str, int] = {
        "POSITION": doc.accessor(
            p32, _FLOAT, "VEC3", min=p32.min(axis=0).tolist(), max=p32.max(axis=0).tolist()
        )
    }
    n = p32.shape[0]
    if primitive.normals is not None:
        attributes["NORMAL"] = doc.accessor(_unit_normals(primitive.normals), _FLOAT, "VEC3")
    if primitive.uvs is not None and primitive.material.texture is not None:
        attributes["TEXCOORD_0"] = doc.accessor(
            np.asarray(primitive.uvs, dtype=np.float32).reshape(n, 2), _FLOAT, "VEC2"
        )
    if primitive.colors is not None:
        rgba = np.asarray(primitive.colors, dtype=np.uint8)
        if rgba.shape[1] == 3:  # VEC3 bytes would break the 4-byte alignment of attributes
            rgba = np.concatenate([rgba, np.full((n, 1), 255, dtype=np.uint8)], axis=1)
        attributes["COLOR_0"] = doc.accessor(rgba, _UNSIGNED_BYTE, "VEC4", normalized=True)
    entry: dict[str, Any] = {
        "attributes": attributes,
        "mode": primitive.mode,
        "material": doc.material(primitive.material),
    }
    if primitive.feature_ids is not None:
        ids = np.asarray(primitive.feature_ids)
        attributes["_FEATURE_ID_0"] = doc.accessor(ids.astype(np.float32), _FLOAT, "SCALAR")
        feature_id: dict[str, Any] = {"featureCount": int(features), "attribute": 0}
        feature_id["propertyTable"] = 0
        entry["extensions"] = {"EXT_mesh_features": {"featureIds": [feature_id]}}
        doc.extensions_used.add("EXT_mesh_features")
    if primitive.indices is not None:
        indices = np.asarray(primitive.indices).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= n):
            raise TilesError("a glTF primitive has triangle indices outside its vertices")
        if n <= 0xFFFF:
            data, component = indices.astype(np.uint16), _UNSIGNED_SHORT
        else:
            data, component = indices.astype(np.uint32), _UNSIGNED_INT
        entry["indices"] = doc.accessor(data, component, "SCALAR", target=_ELEMENT_ARRAY_BUFFER)
    return entry


def property_identifiers(names: Sequence[str]) -> dict[str, str]:
    """Map property names to unique metadata identifiers (``[A-Za-z_][A-Za-z0-9_]*``)."""
    result: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        ident = re.sub(r"[^A-Za-z0-9_]", "_", name) or "_"
        if not _IDENTIFIER.match(ident):
            ident = f"_{ident}"
        base, k = ident, 1
        while ident in taken:
            k += 1
            ident = f"{base}_{k}"
        taken.add(ident)
        result[name] = ident
    return result


def _column_kind(values: Sequence[Any]) -> str:
    if values and all(isinstance(v, bool) for v in values):
        return "BOOLEAN"
    if values and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        return "FLOAT64"
    return "STRING"


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _metadata(doc: _Document, table: PropertyTable) -> dict[str, Any]:
    idents = property_identifiers(list(table.columns))
    class_properties: dict[str, Any] = {}
    table_properties: dict[str, Any] = {}
    for name, values in table.columns.items():
        if len(values) != table.count:
            raise TilesError(
                f"property {name!r} has {len(values)} values for {table.count} features"
            )
        ident = idents[name]
        kind = _column_kind(values)
        definition: dict[str, Any] = {"name": name}
        if kind == "FLOAT64":
            definition.update(type="SCALAR", componentType="FLOAT64")
            data = np.asarray(values, dtype="<f8").tobytes()
            table_properties[ident] = {"values": doc.buffer.add(data)}
        elif kind == "BOOLEAN":
            definition.update(type="BOOLEAN")
            bits = np.packbits(np.asarray(values, dtype=bool), bitorder="little").tobytes()
            table_properties[ident] = {"values": doc.buffer.add(bits)}
        else:
            definition.update(type="STRING")
            encoded = [_as_text(v).encode("utf-8") for v in values]
            offsets = np.zeros(len(encoded) + 1, dtype="<u4")
            offsets[1:] = np.cumsum([len(e) for e in encoded])
            table_properties[ident] = {
                "values": doc.buffer.add(b"".join(encoded) or b"\0"),
                "stringOffsets": doc.buffer.add(offsets.tobytes()),
                "stringOffsetType": "UINT32",
            }
        class_properties[ident] = definition
    doc.extensions_used.add("EXT_structural_metadata")
    return {
        "schema": {"id": "arserver", "classes": {"feature": {"properties": class_properties}}},
        "propertyTables": [
            {"class": "feature", "count": int(table.count), "properties": table_properties}
        ],
    }


def write_glb(
    primitives: Sequence[Primitive],
    *,
    center: Sequence[float] = (0.0, 0.0, 0.0),
    properties: PropertyTable | None = None,
    generator: str = "arserver tiles",
) -> bytes:
    """Encode primitives (ENU metres) as a GLB; ``center`` is subtracted from positions and put
    back by the root node's matrix together with the z-up to y-up rotation."""
    if not primitives:
        raise TilesError("a glTF needs at least one primitive")
    has_ids = any(p.feature_ids is not None for p in primitives)
    if has_ids and properties is None:
        raise TilesError("feature IDs need a property table")
    doc = _Document()
    origin = np.asarray(center, dtype=np.float64)
    features = properties.count if properties is not None else 0
    entries = [_primitive(doc, p, origin, features) for p in primitives]
    translation = np.eye(4)
    translation[:3, 3] = origin
    matrix = Z_UP_TO_Y_UP @ translation
    gltf: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": generator},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "matrix": [float(v) for v in matrix.T.reshape(-1)]}],
        "meshes": [{"primitives": entries}],
        "accessors": doc.accessors,
        "materials": doc.materials,
    }
    if doc.textures:
        gltf["textures"] = doc.textures
        gltf["images"] = doc.images
        gltf["samplers"] = [{"magFilter": 9729, "minFilter": 9987, "wrapS": 10497, "wrapT": 10497}]
    if properties is not None and has_ids:
        gltf["extensions"] = {"EXT_structural_metadata": _metadata(doc, properties)}
    binary = doc.buffer.data()
    gltf["buffers"] = [{"byteLength": len(binary)}]
    gltf["bufferViews"] = doc.buffer.views
    if doc.extensions_used:
        gltf["extensionsUsed"] = sorted(doc.extensions_used)
    text = json.dumps(gltf, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((-len(text)) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return b"".join(
        [
            struct.pack("<4sII", b"glTF", 2, total),
            struct.pack("<I4s", len(text), b"JSON"),
            text,
            struct.pack("<I4s", len(binary), b"BIN\0"),
            binary,
        ]
    )
