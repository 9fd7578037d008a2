"""CityJSON 1.1 and 2.0 (e.g. 3DBAG buildings in RD New + NAP) as features with attributes.

Every city object with geometry at the chosen level of detail becomes one feature; its properties
are its attributes merged over those of its parents (3DBAG keeps most attributes on the Building
and the geometry on its BuildingParts), plus ``id``, ``type`` and ``parent``. The LoD defaults to
the highest present in the file; objects without it use their highest LoD. Surfaces are
triangulated in their own plane (holes included) and coloured by semantics (roof, wall, ground).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
from numpy.typing import NDArray

from tiles.crs import parse_crs
from tiles.errors import TilesError
from tiles.georef import Placement
from tiles.gltf import Material
from tiles.model import FeatureModel, MeshPart
from tiles.readers import sniff
from tiles.readers.sniff import load_json
from tiles.shapes import triangulate_rings

FloatArray = NDArray[np.float64]

_SEMANTIC_MATERIALS = {
    "RoofSurface": Material("roof", (0.55, 0.18, 0.12, 1.0)),
    "WallSurface": Material("wall", (0.85, 0.82, 0.75, 1.0)),
    "GroundSurface": Material("ground", (0.3, 0.3, 0.3, 1.0)),
}
_DEFAULT = Material("building", (0.8, 0.78, 0.72, 1.0))


@dataclass
class _CityObject:
    identifier: str
    properties: dict[str, Any]
    # Per material: triangles as vertex indices into the file's vertex list.
    triangles: dict[Material, list[NDArray[np.int64]]] = field(default_factory=dict)


@dataclass
class CityJsonSource:
    """A parsed CityJSON file; vertices in source coordinates (n, 3)."""

    path: Path
    crs: pyproj.CRS | None
    vertices: FloatArray
    objects: list[_CityObject]
    lod: str

    def sample_points(self) -> FloatArray:
        used = np.unique(
            np.concatenate(
                [t.ravel() for o in self.objects for ts in o.triangles.values() for t in ts]
            )
        )
        sample: FloatArray = self.vertices[used]
        return sample

    def build(self, placement: Placement) -> FeatureModel:
        enu = placement.to_enu(self.vertices)
        parts = []
        for index, obj in enumerate(self.objects):
            for material, chunks in obj.triangles.items():
                faces = np.concatenate(chunks)
                used, inverse = np.unique(faces, return_inverse=True)
                local = inverse.reshape(-1, 3)
                # Flat shading: every triangle gets its own three vertices and face normal.
                corners = enu[used][local]
                normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
                vertices = corners.reshape(-1, 3)
                parts.append(
                    MeshPart(
                        vertices=vertices,
                        faces=np.arange(vertices.shape[0], dtype=np.int64).reshape(-1, 3),
                        feature=index,
                        material=material,
                        normals=np.repeat(normal, 3, axis=0),
                    )
                )
        return FeatureModel(parts, [o.properties for o in self.objects])


def supports(path: Path) -> bool:
    """Whether the file is CityJSON by its content (its top-level ``type``), whatever its name."""
    return sniff.detect_or_none(path) is sniff.CITYJSON


def _crs(document: dict[str, Any]) -> pyproj.CRS | None:
    reference = (document.get("metadata") or {}).get("referenceSystem")
    if not reference:
        return None
    match = re.search(r"EPSG/\d+/(\d+)|EPSG::?(\d+)", str(reference))
    if match is None:
        raise TilesError(f"unrecognised referenceSystem {reference!r}")
    return parse_crs(f"EPSG:{match.group(1) or match.group(2)}")


def read(path: Path, lod: str | None = None) -> CityJsonSource:
    """Parse a CityJSON file; raises :class:`TilesError` for anything unusable."""
    document = load_json(path)
    if not isinstance(document, dict) or document.get("type") != "CityJSON":
        raise TilesError("not a CityJSON document")
    version = str(document.get("version", ""))
    if not version.startswith(("1.1", "2.0")):
        raise TilesError(f"CityJSON version {version!r} is not supported (1.1 and 2.0 are)")
    vertices = _vertices(document)
    city_objects = document.get("CityObjects")
    if not isinstance(city_objects, dict) or not city_objects:
        raise TilesError("the file has no CityObjects")
    chosen = lod or _highest_lod(city_objects)
    objects = []
    for identifier, obj in city_objects.items():
        geometries = obj.get("geometry") or []
        if not geometries:
            continue
        geometry = _pick(geometries, chosen)
        city_object = _CityObject(identifier, _properties(identifier, obj, city_objects))
        try:
            for material, polygon in _surfaces(geometry):
                city_object.triangles.setdefault(material, []).append(
                    _triangulate(polygon, vertices)
                )
        except (TypeError, ValueError, IndexError) as exc:
            raise TilesError(f"city object {identifier!r}: malformed geometry: {exc}") from exc
        if city_object.triangles:
            objects.append(city_object)
    if not objects:
        raise TilesError("no city object has geometry")
    return CityJsonSource(path, _crs(document), vertices, objects, chosen)


def _vertices(document: dict[str, Any]) -> FloatArray:
    try:
        raw = np.asarray(document["vertices"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise TilesError(f"bad 'vertices': {exc}") from exc
    if raw.ndim != 2 or raw.shape[1] != 3 or raw.shape[0] == 0:
        raise TilesError("'vertices' must be a non-empty list of [x, y, z]")
    transform = document.get("transform")
    if transform:
        raw = raw * np.asarray(transform["scale"], dtype=np.float64) + np.asarray(
            transform["translate"], dtype=np.float64
        )
    if not np.isfinite(raw).all():
        raise TilesError("'vertices' holds non-finite numbers")
    return raw


def _lod_key(lod: Any) -> tuple[float, str]:
    try:
        return (float(lod), str(lod))
    except (TypeError, ValueError):
        return (-1.0, str(lod))


def _highest_lod(city_objects: dict[str, Any]) -> str:
    lods = {str(g.get("lod")) for o in city_objects.values() for g in (o.get("geometry") or [])}
    if not lods:
        raise TilesError("no city object has geometry")
    return max(lods, key=_lod_key)


def _pick(geometries: list[dict[str, Any]], lod: str) -> dict[str, Any]:
    for geometry in geometries:
        if str(geometry.get("lod")) == lod:
            return geometry
    return max(geometries, key=lambda g: _lod_key(g.get("lod")))


def _properties(
    identifier: str, obj: dict[str, Any], all_objects: dict[str, Any]
) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for parent in obj.get("parents") or []:
        merged.update((all_objects.get(parent) or {}).get("attributes") or {})
    merged.update(obj.get("attributes") or {})
    merged["id"] = identifier
    merged["type"] = obj.get("type")
    if obj.get("parents"):
        merged["parent"] = obj["parents"][0]
    return merged


def _surfaces(geometry: dict[str, Any]) -> Iterator[tuple[Material, list[list[int]]]]:
    """Each surface (a list of rings of vertex indices) with the material of its semantics."""
    kind = geometry.get("type")
    boundaries = geometry.get("boundaries") or []
    semantics = geometry.get("semantics") or {}
    surfaces = semantics.get("surfaces") or []
    values = semantics.get("values")
    if kind in ("MultiSurface", "CompositeSurface"):
        groups = [(boundaries, values)]
    elif kind == "Solid":
        groups = [(shell, values[k] if values else None) for k, shell in enumerate(boundaries)]
    elif kind in ("MultiSolid", "CompositeSolid"):
        groups = [
            (shell, values[i][k] if values else None)
            for i, solid in enumerate(boundaries)
            for k, shell in enumerate(solid)
        ]
    else:
        return
    for polygons, labels in groups:
        for k, polygon in enumerate(polygons):
            label = labels[k] if labels else None
            kind_name = surfaces[label].get("type") if label is not None else None
            yield _SEMANTIC_MATERIALS.get(str(kind_name), _DEFAULT), polygon


def _triangulate(polygon: list[list[int]], vertices: FloatArray) -> NDArray[np.int64]:
    """Triangles (m, 3) of file vertex indices for a planar polygon with holes in 3D."""
    rings = [np.asarray(ring, dtype=np.int64) for ring in polygon if len(ring) >= 3]
    if not rings:
        return np.empty((0, 3), dtype=np.int64)
    exterior = vertices[rings[0]]
    normal = _newell(exterior)
    if not np.linalg.norm(normal) > 0:
        return np.empty((0, 3), dtype=np.int64)
    normal /= np.linalg.norm(normal)
    # A 2D basis in the polygon's plane, right-handed about its normal (keeps the winding).
    helper = np.array([0.0, 0.0, 1.0]) if abs(normal[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(helper, normal)
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    origin = exterior.mean(axis=0)
    flat = [
        np.column_stack([(vertices[r] - origin) @ u, (vertices[r] - origin) @ v]) for r in rings
    ]
    try:
        local = triangulate_rings(flat)
    except TilesError:
        return np.empty((0, 3), dtype=np.int64)
    indices: NDArray[np.int64] = np.concatenate(rings)[local]
    return indices


def _newell(points: FloatArray) -> FloatArray:
    nxt = np.roll(points, -1, axis=0)
    return np.array(
        [
            np.sum((points[:, 1] - nxt[:, 1]) * (points[:, 2] + nxt[:, 2])),
            np.sum((points[:, 2] - nxt[:, 2]) * (points[:, 0] + nxt[:, 0])),
            np.sum((points[:, 0] - nxt[:, 0]) * (points[:, 1] + nxt[:, 1])),
        ]
    )
