"""Spatial predicates and measures in SQL on both backends, for geometries kept as a point
(``lon``, ``lat`` columns, WGS 84 degrees) or a GeoJSON area (a JSON column, WGS 84).

On PostgreSQL they are PostGIS functions (``ST_Intersects``, ``ST_Distance`` on geography, ...).
SQLite has none, so :func:`install_sqlite_functions` adds three deterministic SQL functions
computed with shapely and pyproj; the same SQL expressions then run on either backend.
Predicates follow the OGC simple-features semantics of both (DE-9IM); distances and lengths
are metres on the WGS 84 ellipsoid (on SQLite between the nearest points of the two
geometries as found in degrees, which differs from PostGIS's geodesic minimum by far less than
a metre at city scale).
"""

from __future__ import annotations

import json
import math
import sqlite3
from functools import lru_cache
from typing import Any, Final

import shapely
from pyproj import Geod
from shapely import wkt as shapely_wkt
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points
from sqlalchemy import ColumnElement, Float, Integer, String, case, cast, func, literal

#: The simple-features predicates by the name of their SensorThings function.
PREDICATES: Final = {
    "st_equals": "equals", "st_disjoint": "disjoint", "st_touches": "touches",
    "st_within": "within", "st_overlaps": "overlaps", "st_crosses": "crosses",
    "st_intersects": "intersects", "geo.intersects": "intersects", "st_contains": "contains",
}  # fmt: skip

_GEOD: Final = Geod(ellps="WGS84")


class Shape:
    """A geometry operand of a spatial expression: an entity's own geometry (point columns
    ``lon``/``lat`` and an ``area`` GeoJSON column, either may be NULL) or a literal (WKT,
    WGS 84 lon lat)."""

    def __init__(
        self,
        *,
        lon: ColumnElement[Any] | None = None,
        lat: ColumnElement[Any] | None = None,
        area: ColumnElement[Any] | None = None,
        wkt: str | None = None,
    ) -> None:
        self.lon, self.lat, self.area, self.wkt = lon, lat, area, wkt

    def postgis(self) -> ColumnElement[Any]:
        if self.wkt is not None:
            return func.ST_GeomFromText(literal(self.wkt, String), 4326)
        point = func.ST_SetSRID(func.ST_MakePoint(self.lon, self.lat), 4326)
        if self.area is None:
            return point
        area = func.ST_SetSRID(func.ST_GeomFromGeoJSON(cast(self.area, String)), 4326)
        return case((self.lon.is_not(None), point), else_=area)  # type: ignore[union-attr]

    def sqlite_args(self) -> list[ColumnElement[Any]]:
        if self.wkt is not None:
            null = literal(None, Float)
            return [null, null, literal(None, String), literal(self.wkt, String)]
        area = cast(self.area, String) if self.area is not None else literal(None, String)
        return [self.lon, self.lat, area, literal(None, String)]  # type: ignore[list-item]


def predicate(dialect: str, name: str, a: Shape, b: Shape, pattern: str | None = None) -> Any:
    """``name`` (a key of :data:`PREDICATES`, or ``st_relate`` with a DE-9IM ``pattern``) of
    ``a`` and ``b`` as a boolean SQL expression (NULL when a geometry is missing)."""
    if dialect == "postgresql":
        if name == "st_relate":
            return func.ST_Relate(a.postgis(), b.postgis(), literal(pattern, String))
        return getattr(func, "ST_" + PREDICATES[name].capitalize())(a.postgis(), b.postgis())
    operation = "relate:" + (pattern or "") if name == "st_relate" else PREDICATES[name]
    value = func.sta_predicate(literal(operation, String), *a.sqlite_args(), *b.sqlite_args())
    return value.cast(Integer) == 1


def distance(dialect: str, a: Shape, b: Shape) -> ColumnElement[Any]:
    """The distance of ``a`` and ``b`` in metres (see the module's note)."""
    if dialect == "postgresql":
        return func.ST_Distance(_geography(a.postgis()), _geography(b.postgis()))
    return func.sta_distance(*a.sqlite_args(), *b.sqlite_args()).cast(Float)


def length(dialect: str, a: Shape) -> ColumnElement[Any]:
    """The length of ``a`` in metres (0 for points and areas' interiors: the perimeter of an
    area is not its length, as in PostGIS)."""
    if dialect == "postgresql":
        return func.ST_Length(_geography(a.postgis()))
    return func.sta_length(*a.sqlite_args()).cast(Float)


def _geography(expression: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.geography(expression)


def install_sqlite_functions(connection: sqlite3.Connection) -> None:
    """Add ``sta_predicate``, ``sta_distance`` and ``sta_length`` to a SQLite connection, and
    ``sta_floor`` and ``sta_ceiling`` (SQLite has ``floor`` only when built with its math
    functions)."""
    connection.create_function("sta_predicate", 9, _sqlite_predicate, deterministic=True)
    connection.create_function("sta_distance", 8, _sqlite_distance, deterministic=True)
    connection.create_function("sta_length", 4, _sqlite_length, deterministic=True)
    connection.create_function("sta_floor", 1, _rounded(math.floor), deterministic=True)
    connection.create_function("sta_ceiling", 1, _rounded(math.ceil), deterministic=True)


def _rounded(operation: Any) -> Any:
    def apply(value: Any) -> float | None:
        if not isinstance(value, int | float) or not math.isfinite(value):
            return None
        return float(operation(value))

    return apply


@lru_cache(maxsize=256)
def _from_wkt(text: str) -> BaseGeometry:
    return shapely_wkt.loads(text)


@lru_cache(maxsize=4096)
def _from_geojson(text: str) -> BaseGeometry:
    return shape(json.loads(text))


def _geometry(
    lon: float | None, lat: float | None, area: str | None, wkt: str | None
) -> BaseGeometry | None:
    """The operand from the SQL arguments; None when it has no geometry (or an unreadable
    one: a SQL function must not raise mid-query)."""
    try:
        if wkt is not None:
            return _from_wkt(wkt)
        if lon is not None and lat is not None:
            return Point(lon, lat)
        if area is not None:
            return _from_geojson(area)
    except (ValueError, TypeError, KeyError, AttributeError, shapely.errors.ShapelyError):
        return None
    return None


def _sqlite_predicate(operation: str, *args: Any) -> int | None:
    a, b = _geometry(*args[:4]), _geometry(*args[4:])
    if a is None or b is None:
        return None
    if operation.startswith("relate:"):
        return int(bool(a.relate_pattern(b, operation[len("relate:") :])))
    return int(bool(getattr(a, operation)(b)))


def _sqlite_distance(*args: Any) -> float | None:
    a, b = _geometry(*args[:4]), _geometry(*args[4:])
    if a is None or b is None or a.is_empty or b.is_empty:
        return None
    if a.intersects(b):
        return 0.0
    near_a, near_b = nearest_points(a, b)
    _, _, metres = _GEOD.inv(near_a.x, near_a.y, near_b.x, near_b.y)
    return float(metres)


def _sqlite_length(*args: Any) -> float | None:
    a = _geometry(*args)
    if a is None:
        return None
    if a.geom_type in ("LineString", "MultiLineString"):
        return float(_GEOD.geometry_length(a))
    return 0.0
