"""GeoJSON features as 3D: polygons extruded, lines as tubes (cables and pipes), points as poles.

Heights are metres in the vertical datum of the CRS (NAP for RD New, ellipsoidal otherwise):

- Polygons stand between ``base`` and ``top`` (or ``base + height``); ``base`` defaults to the
  polygon's own z, else 0; a polygon with no height is a thin slab (a zone on the ground).
- Lines are tubes of ``diameter`` (millimetres by default, as in KLIC/IMKL utility data) whose
  centre lies ``depth`` metres below ``ground`` (or below the line's own z, else below 0).
- Points are poles of ``height`` metres (or 0.5 m markers) on ``base`` (or their own z, else 0).

Attribute names are configurable with :class:`FeatureOptions`. The CRS comes from the legacy
``crs`` member (e.g. ``urn:ogc:def:crs:EPSG::28992``), else from the caller, else RFC 7946's
WGS 84 longitude/latitude when the coordinates fit it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray
from shapely.geometry import LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from tiles.crs import parse_crs
from tiles.errors import TilesError
from tiles.georef import Placement
from tiles.gltf import Material
from tiles.model import FeatureModel, MeshPart
from tiles.readers import sniff
from tiles.readers.sniff import load_json
from tiles.shapes import DegenerateLineError, Mesh, prisms, triangulate_rings, tubes

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class FeatureOptions:
    """Which properties carry heights and sizes (metres unless stated)."""

    base_attribute: str = "base"
    top_attribute: str = "top"
    height_attribute: str = "height"
    ground_attribute: str = "ground"
    depth_attribute: str = "depth"
    diameter_attribute: str = "diameter"
    diameter_unit_m: float = 0.001  # millimetres, as in KLIC/IMKL
    default_slab_m: float = 0.2
    default_diameter_m: float = 0.1
    marker_height_m: float = 0.5


# Colours of the Dutch utility map (KLIC) themes, matched on a feature's theme-like properties.
_THEME_COLOURS: tuple[tuple[tuple[str, ...], tuple[float, float, float, float]], ...] = (
    (
        ("elektr", "electric", "laagspanning", "middenspanning", "hoogspanning", "power"),
        (0.8, 0.05, 0.05, 1.0),
    ),
    (("gas",), (0.95, 0.8, 0.0, 1.0)),
    (("riool", "sewer", "afvalwater"), (0.45, 0.15, 0.5, 1.0)),
    (("water",), (0.05, 0.3, 0.85, 1.0)),
    (("telecom", "data", "glasvezel", "fibre", "fiber"), (0.1, 0.6, 0.15, 1.0)),
    (("warmte", "heat"), (0.95, 0.45, 0.05, 1.0)),
)
_ZONE = Material("zone", (0.15, 0.55, 0.95, 0.65), double_sided=True)
_LINE = Material("line", (0.6, 0.35, 0.1, 1.0))
_POINT = Material("point", (0.35, 0.35, 0.38, 1.0), metallic=0.5, roughness=0.5)


@dataclass(eq=False)
class _PrismRequest:
    """An extruded polygon to build once all points are placed: the slices of its base and top
    rings in the placed points, and its cap triangles."""

    bases: list[slice]
    tops: list[slice]
    cap: NDArray[np.int64]


@dataclass(eq=False)
class _TubeRequest:
    """A tube (or pole) to build once all points are placed: its centre line's slice in the
    placed points, its radius in metres and its number of sides."""

    points: slice
    radius: float
    sides: int


_Request = _PrismRequest | _TubeRequest


class _PointBatch:
    """Source points gathered from many features, to be placed in one vectorised call."""

    def __init__(self) -> None:
        self._chunks: list[FloatArray] = []
        self._size = 0

    def add(self, points: FloatArray) -> slice:
        """Queue (n, 3) source points; the slice finds them in the placed array later."""
        start = self._size
        self._chunks.append(points)
        self._size += len(points)
        return slice(start, self._size)

    def concatenate(self) -> FloatArray:
        return np.concatenate(self._chunks) if self._chunks else np.empty((0, 3))


@dataclass
class _Feature:
    geometry: BaseGeometry
    properties: dict[str, Any]
    label: str


@dataclass
class GeoJsonSource:
    """A parsed GeoJSON file, still in source coordinates."""

    path: Path
    crs: pyproj.CRS | None
    features: list[_Feature] = field(default_factory=list)
    options: FeatureOptions = field(default_factory=FeatureOptions)

    def sample_points(self) -> FloatArray:
        """Source coordinates (n, 3) at base height, for choosing the ENU origin."""
        chunks = []
        for f in self.features:
            xy = shapely.get_coordinates(f.geometry)
            chunks.append(np.column_stack([xy, np.full(len(xy), self._base(f))]))
        return np.concatenate(chunks)

    def _number(self, feature: _Feature, name: str) -> float | None:
        value = feature.properties.get(name)
        if value is None or value == "":
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TilesError(
                f"{feature.label}: property {name!r} is not a number: {value!r}"
            ) from None
        if not math.isfinite(number):
            raise TilesError(f"{feature.label}: property {name!r} is not finite: {value!r}")
        return number

    def _base(self, feature: _Feature) -> float:
        base = self._number(feature, self.options.base_attribute)
        if base is not None:
            return base
        if feature.geometry.has_z:
            return float(np.mean(shapely.get_coordinates(feature.geometry, include_z=True)[:, 2]))
        return 0.0

    def build(self, placement: Placement) -> FeatureModel:
        """Meshes in the placement's ENU frame, one feature per GeoJSON feature.

        Vectorised across features: every feature first lists the source points it needs
        placed, then all of them go through the placement in one call, then all prisms and all
        tubes are built in one call per kind.
        """
        points = _PointBatch()
        planned: list[tuple[int, Material, list[_Request]]] = []
        for index, feature in enumerate(self.features):
            planned.append((index, self._material(feature), self._plan(feature, points)))
        enu = placement.to_enu(points.concatenate())
        meshes = self._build_meshes(planned, enu)
        parts: list[MeshPart] = []
        for index, material, requests in planned:
            for request in requests:
                vertices, faces, normals = meshes[id(request)]
                parts.append(MeshPart(vertices, faces, index, material, normals))
        return FeatureModel(parts, [f.properties for f in self.features])

    def _build_meshes(
        self, planned: list[tuple[int, Material, list[_Request]]], enu: FloatArray
    ) -> dict[int, Mesh]:
        """Every requested mesh, keyed by the id of its request."""
        solids: list[_PrismRequest] = []
        lines: dict[int, list[tuple[int, _TubeRequest]]] = {}
        for index, _, requests in planned:
            for request in requests:
                if isinstance(request, _PrismRequest):
                    solids.append(request)
                else:
                    lines.setdefault(request.sides, []).append((index, request))
        meshes: dict[int, Mesh] = {}
        if solids:
            built = prisms(
                [([enu[s] for s in r.bases], [enu[s] for s in r.tops], r.cap) for r in solids]
            )
            meshes.update((id(r), mesh) for r, mesh in zip(solids, built, strict=True))
        for sides, group in lines.items():
            centres = [enu[request.points] for _, request in group]
            radii = np.array([request.radius for _, request in group])
            try:
                tubed = tubes(centres, radii, sides)
            except DegenerateLineError as exc:
                raise TilesError(f"{self.features[group[exc.index][0]].label}: {exc}") from exc
            meshes.update((id(r), mesh) for (_, r), mesh in zip(group, tubed, strict=True))
        return meshes

    def _plan(self, feature: _Feature, points: _PointBatch) -> list[_Request]:
        geometry = feature.geometry
        try:
            if isinstance(geometry, Polygon | MultiPolygon):
                return [
                    self._prism(feature, p, points) for p in getattr(geometry, "geoms", [geometry])
                ]
            if isinstance(geometry, LineString | MultiLineString):
                return [
                    self._tube(feature, line, points)
                    for line in getattr(geometry, "geoms", [geometry])
                ]
            if isinstance(geometry, Point | MultiPoint):
                return [
                    self._pole(feature, p, points) for p in getattr(geometry, "geoms", [geometry])
                ]
        except TilesError as exc:
            raise TilesError(f"{feature.label}: {exc}") from exc
        raise TilesError(f"{feature.label}: unsupported geometry type {geometry.geom_type}")

    def _prism(self, feature: _Feature, polygon: Polygon, points: _PointBatch) -> _PrismRequest:
        o = self.options
        polygon = orient(polygon, sign=1.0)
        base = self._base(feature)
        top = self._number(feature, o.top_attribute)
        if top is None:
            height = self._number(feature, o.height_attribute)
            top = base + (height if height is not None else o.default_slab_m)
        if top <= base:
            raise TilesError(f"top height {top} is not above base height {base}")
        rings = [np.asarray(polygon.exterior.coords)[:-1, :2]]
        rings += [np.asarray(r.coords)[:-1, :2] for r in polygon.interiors]
        cap = triangulate_rings(rings)
        bases = [points.add(np.column_stack([r, np.full(len(r), base)])) for r in rings]
        tops = [points.add(np.column_stack([r, np.full(len(r), top)])) for r in rings]
        return _PrismRequest(bases, tops, cap)

    def _tube(self, feature: _Feature, line: LineString, points: _PointBatch) -> _TubeRequest:
        o = self.options
        xyz = shapely.get_coordinates(line, include_z=line.has_z)
        ground = self._number(feature, o.ground_attribute)
        base = ground if ground is not None else 0.0
        z = xyz[:, 2] if line.has_z else np.full(len(xyz), base)
        depth = self._number(feature, o.depth_attribute) or 0.0
        diameter = self._number(feature, o.diameter_attribute)
        size = diameter * o.diameter_unit_m if diameter is not None else o.default_diameter_m
        if size <= 0:
            raise TilesError(f"diameter must be positive, got {diameter}")
        centre = points.add(np.column_stack([xyz[:, :2], z - depth]))
        return _TubeRequest(centre, size / 2.0, 8)

    def _pole(self, feature: _Feature, point: Point, points: _PointBatch) -> _TubeRequest:
        o = self.options
        base = self._base(feature)
        height = self._number(feature, o.height_attribute)
        diameter = self._number(feature, o.diameter_attribute)
        radius = diameter * o.diameter_unit_m / 2.0 if diameter is not None else 0.1
        if height is None:
            height, radius = o.marker_height_m, 0.25
        if height <= 0 or radius <= 0:
            raise TilesError(f"pole height and diameter must be positive, got {height}, {diameter}")
        # The top is placed too, so the pole stands along the local vertical exactly.
        ends = points.add(np.array([[point.x, point.y, base], [point.x, point.y, base + height]]))
        return _TubeRequest(ends, radius, 12)

    def _material(self, feature: _Feature) -> Material:
        colour = feature.properties.get("color") or feature.properties.get("colour")
        if isinstance(colour, str) and len(colour) == 7 and colour.startswith("#"):
            try:
                rgb = [int(colour[k : k + 2], 16) / 255.0 for k in (1, 3, 5)]
            except ValueError:
                rgb = []
            if rgb:
                linear = [c**2.2 for c in rgb]  # sRGB to the linear factors glTF wants
                return Material(f"colour {colour}", (linear[0], linear[1], linear[2], 1.0))
        geometry = feature.geometry
        if isinstance(geometry, LineString | MultiLineString):
            text = " ".join(
                str(v).lower() for v in feature.properties.values() if isinstance(v, str)
            )
            for keywords, rgba in _THEME_COLOURS:
                if any(k in text for k in keywords):
                    return Material(f"utility {keywords[0]}", rgba)
            return _LINE
        if isinstance(geometry, Polygon | MultiPolygon):
            return _ZONE
        return _POINT


def supports(path: Path) -> bool:
    """Whether the file is GeoJSON by its content (its top-level ``type``), whatever its name."""
    return sniff.detect_or_none(path) is sniff.GEOJSON


def _named_crs(document: dict[str, Any]) -> pyproj.CRS | None:
    member = document.get("crs")
    if not isinstance(member, dict):
        return None
    name = (member.get("properties") or {}).get("name")
    if not isinstance(name, str):
        raise TilesError("the 'crs' member has no properties.name")
    return parse_crs(name)


def read(path: Path, options: FeatureOptions | None = None) -> GeoJsonSource:
    """Parse and validate a GeoJSON file; raises :class:`TilesError` for anything unusable."""
    document = load_json(path)
    if not isinstance(document, dict):
        raise TilesError("not a GeoJSON object")
    kind = document.get("type")
    if kind == "FeatureCollection":
        raw = document.get("features")
        if not isinstance(raw, list):
            raise TilesError("a FeatureCollection needs a 'features' list")
    elif kind == "Feature":
        raw = [document]
    else:
        raise TilesError(
            f"unsupported GeoJSON type {kind!r} (expected FeatureCollection or Feature)"
        )
    if not raw:
        raise TilesError("the file has no features")
    source = GeoJsonSource(path, _named_crs(document), options=options or FeatureOptions())
    for index, item in enumerate(raw):
        source.features.append(_feature(item, index))
    return source


def _feature(item: Any, index: int) -> _Feature:
    if not isinstance(item, dict) or item.get("type") != "Feature":
        raise TilesError(f"feature {index}: not a GeoJSON Feature")
    label = f"feature {index}" + (f" (id {item['id']!r})" if "id" in item else "")
    if item.get("geometry") is None:
        raise TilesError(f"{label}: has no geometry")
    try:
        geometry = shapely.geometry.shape(item["geometry"])
    except (ValueError, TypeError, AttributeError, KeyError, shapely.errors.GEOSException) as exc:
        raise TilesError(f"{label}: invalid geometry: {exc}") from exc
    if geometry.is_empty:
        raise TilesError(f"{label}: empty geometry")
    coordinates = shapely.get_coordinates(geometry, include_z=geometry.has_z)
    if not np.isfinite(coordinates).all():
        raise TilesError(f"{label}: coordinates are not finite numbers")
    if not geometry.is_valid:
        raise TilesError(f"{label}: invalid geometry: {shapely.is_valid_reason(geometry)}")
    properties = dict(item.get("properties") or {})
    if "id" in item and "id" not in properties:
        properties["id"] = item["id"]
    return _Feature(geometry, properties, label)


def looks_geographic(source: GeoJsonSource) -> bool:
    """Whether every coordinate fits longitude/latitude degrees (RFC 7946's default CRS)."""
    xy = source.sample_points()
    return bool((np.abs(xy[:, 0]) <= 180).all() and (np.abs(xy[:, 1]) <= 90).all())
