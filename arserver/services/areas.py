"""Areas given as GeoJSON Polygons or MultiPolygons (a participation round's, the one a mobile
sensor moves in), in WGS 84 or any CRS with ``crs``, checked and stored in WGS 84 only."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shapely.geometry import shape
from shapely.validation import explain_validity

from arserver.errors import InputError
from arserver.services.places import Extent
from tiles.crs import Transformer
from tiles.errors import CrsError, InvalidCoordinatesError, OutsideGridError

#: The most vertices an area may have (all its rings together).
MAX_AREA_VERTICES = 10_000


@dataclass(frozen=True)
class Area:
    """A checked area: the GeoJSON as stored (positions as [lon, lat] floats) and its
    bounding box (west, south, east, north, degrees)."""

    geojson: dict[str, Any]
    bbox: tuple[float, float, float, float]


def parse_area(value: Any, extent: Extent | None, crs: str | None = None) -> Area:
    """An area (a round's, the one a mobile sensor moves in) from a GeoJSON Polygon or
    MultiPolygon: at most :data:`MAX_AREA_VERTICES` vertices, closed rings of at least four
    positions, valid (no self-intersection), not empty and within ``extent`` (None: anywhere);
    :class:`InputError` that says what is wrong otherwise. Positions are [lon, lat] in WGS 84
    degrees, or, with ``crs`` (e.g. ``EPSG:28992`` RD New, ``EPSG:7415`` RD New + NAP), x y in
    that CRS (x y order whatever its official axis order; a third value is ignored), converted
    to ETRS89 (= WGS 84 here, EPSG:4258) lon, lat; the area is stored in WGS 84 only. The
    structure is checked before any geometry is built, so the work is bounded by the vertex
    limit."""
    if not isinstance(value, dict) or value.get("type") not in ("Polygon", "MultiPolygon"):
        raise InputError("the area is a GeoJSON Polygon or MultiPolygon (WGS 84 lon, lat)")
    kind = value["type"]
    coordinates = value.get("coordinates")
    polygons = [coordinates] if kind == "Polygon" else coordinates
    if not isinstance(polygons, list) or not polygons:
        raise InputError(f"the area's coordinates are not those of a {kind}")
    vertices = 0
    raw: list[list[list[tuple[float, float]]]] = []
    for p, rings in enumerate(polygons):
        if not isinstance(rings, list) or not rings:
            raise InputError(f"polygon {p} of the area has no rings")
        raw_rings = []
        for r, ring in enumerate(rings):
            if not isinstance(ring, list) or len(ring) < 4:
                raise InputError(f"ring {r} of polygon {p} of the area has fewer than 4 positions")
            vertices += len(ring)
            if vertices > MAX_AREA_VERTICES:
                raise InputError(f"the area has more than {MAX_AREA_VERTICES} vertices")
            positions = [_position(item, p, r, crs) for item in ring]
            if positions[0] != positions[-1]:
                raise InputError(
                    f"ring {r} of polygon {p} of the area is not closed (its last position "
                    "must repeat its first)"
                )
            raw_rings.append(positions)
        raw.append(raw_rings)
    clean = _to_wgs84(raw, crs) if crs is not None else raw
    for rings in clean:
        for ring in rings:
            for lon, lat in ring:
                if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                    raise InputError(
                        f"the area's position [{lon:g}, {lat:g}] is not longitude, latitude in "
                        "degrees; positions in another CRS (RD New: EPSG:28992) need 'crs'"
                    )
    listed = [[[[lon, lat] for lon, lat in ring] for ring in rings] for rings in clean]
    geojson: dict[str, Any] = {
        "type": kind,
        "coordinates": listed[0] if kind == "Polygon" else listed,
    }
    geometry = shape(geojson)
    if not geometry.is_valid:
        raise InputError(f"the area is not a valid polygon: {explain_validity(geometry)[:200]}")
    if geometry.is_empty or geometry.area == 0:
        raise InputError("the area is empty")
    west, south, east, north = (float(v) for v in geometry.bounds)
    if extent is not None:
        ew, es, ee, en = extent
        if not (ew <= west and es <= south and east <= ee and north <= en):
            raise InputError(
                f"the area ({west:g}, {south:g} to {east:g}, {north:g}) reaches outside the "
                f"municipality's extent ({ew:g}, {es:g} to {ee:g}, {en:g}); are its positions "
                + ("in " + crs if crs is not None else "lon, lat in WGS 84")
                + "?"
            )
    return Area(geojson, (west, south, east, north))


def _position(item: Any, polygon: int, ring: int, crs: str | None) -> tuple[float, float]:
    """The first two values of a position as floats; :class:`InputError` for anything but a
    list of 2 or 3 finite numbers (an integer too large for a float is not one)."""
    numbers = [_finite(v) for v in item] if isinstance(item, list) and 2 <= len(item) <= 3 else []
    first, second = (numbers + [None, None])[:2]
    if first is None or second is None or None in numbers:
        what = "x, y" if crs is not None else "[lon, lat]"
        raise InputError(
            f"ring {ring} of polygon {polygon} of the area holds a position that is not "
            f"{what} of finite numbers"
        )
    return (first, second)


def _finite(value: Any) -> float | None:
    """``value`` as a finite float, None if it is not a number (booleans are not) or has no
    finite float (NaN, infinity, an integer beyond the float range, e.g. ``10**400``)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError, TypeError):
        return None
    return number if math.isfinite(number) else None


def _to_wgs84(
    polygons: list[list[list[tuple[float, float]]]], crs: str
) -> list[list[list[tuple[float, float]]]]:
    """The positions of ``polygons`` (x y in ``crs``) as ETRS89 lon, lat, in one batch."""
    xs = [x for rings in polygons for ring in rings for x, _ in ring]
    ys = [y for rings in polygons for ring in rings for _, y in ring]
    try:
        lons, lats, _ = Transformer.from_crs(crs, "EPSG:4258").transform(xs, ys)
    except (CrsError, OutsideGridError, InvalidCoordinatesError) as exc:
        raise InputError(f"the area in {crs}: {exc}") from exc
    converted = iter(zip(lons.tolist(), lats.tolist(), strict=True))
    return [[[next(converted) for _ in ring] for ring in rings] for rings in polygons]
