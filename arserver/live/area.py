"""Areas a client subscribes to, and the grid that finds them fast.

Areas are in WGS 84 degrees: a box, or a circle of ``radius_m`` metres around a centre (tested
by great-circle distance on the mean sphere; 0.5% at most, plenty for "what is around me").
The grid cuts the world into cells of ``CELL_DEG`` degrees; an area covers a set of cells, a
point falls in one, so matching an event costs the subscriptions of one cell, not all of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from arserver.errors import InputError

EARTH_RADIUS_M = 6_371_008.8
CELL_DEG = 0.005  # about 550 m north-south, 340 m east-west in the Netherlands
MAX_RADIUS_M = 50_000.0
METRES_PER_DEGREE_LAT = math.pi * EARTH_RADIUS_M / 180


class AreaError(InputError):
    """An area a client sent that cannot be used (the message says why)."""


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine on the mean sphere)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bbox_around(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """A WGS 84 box (west, south, east, north) that holds the circle of ``radius_m`` metres
    around (lon, lat), clipped to the world."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    return max(lon - dlon, -180), max(lat - dlat, -90), min(lon + dlon, 180), min(lat + dlat, 90)


@dataclass(frozen=True, slots=True)
class Area:
    """A box (``center`` None) or a circle; ``west..north`` always bound it."""

    west: float
    south: float
    east: float
    north: float
    center: tuple[float, float] | None = None
    radius_m: float | None = None
    metres_per_degree_lon: float = field(default=0.0, compare=False)  # at the centre

    @classmethod
    def box(cls, west: float, south: float, east: float, north: float) -> Area:
        if not all(math.isfinite(v) for v in (west, south, east, north)):
            raise AreaError("bbox values must be finite numbers")
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise AreaError(
                "bbox must be [west, south, east, north] with west < east, south < north"
            )
        return cls(west, south, east, north)

    @classmethod
    def circle(cls, lon: float, lat: float, radius_m: float) -> Area:
        if not all(math.isfinite(v) for v in (lon, lat, radius_m)):
            raise AreaError("center and radius_m must be finite numbers")
        if not (-180 <= lon <= 180 and -85 <= lat <= 85):
            raise AreaError("center must be [lon, lat] within -180..180, -85..85")
        if not 0 < radius_m <= MAX_RADIUS_M:
            raise AreaError(f"radius_m must be more than 0 and at most {MAX_RADIUS_M:g}")
        return cls(
            *bbox_around(lon, lat, radius_m), (lon, lat), radius_m,
            METRES_PER_DEGREE_LAT * math.cos(math.radians(lat)),
        )  # fmt: skip

    @classmethod
    def parse(cls, value: Any) -> Area:
        """From the protocol's ``{"bbox": [w, s, e, n]}`` or ``{"center": [lon, lat],
        "radius_m": r}``."""
        if not isinstance(value, dict):
            raise AreaError(
                "area must be {'bbox': [w, s, e, n]} or {'center': [lon, lat], 'radius_m': r}"
            )
        if "bbox" in value:
            box = _numbers(value["bbox"], 4, "bbox")
            return cls.box(*box)
        if "center" in value:
            lon, lat = _numbers(value["center"], 2, "center")
            radius = value.get("radius_m")
            if isinstance(radius, bool) or not isinstance(radius, int | float):
                raise AreaError("a circle needs radius_m (metres)")
            return cls.circle(lon, lat, float(radius))
        raise AreaError("area must have a bbox or a center and radius_m")

    def contains(self, lon: float, lat: float) -> bool:
        if not (self.west <= lon <= self.east and self.south <= lat <= self.north):
            return False
        if self.center is None or self.radius_m is None:
            return True
        # Flat-earth distance around the centre: within 0.1% of the great circle at the
        # radii allowed (<= 50 km), and several times cheaper, which matters per event.
        dx = (lon - self.center[0]) * self.metres_per_degree_lon
        dy = (lat - self.center[1]) * METRES_PER_DEGREE_LAT
        return dx * dx + dy * dy <= self.radius_m * self.radius_m

    @property
    def reference(self) -> tuple[float, float]:
        """Where "near" is measured from: the circle's centre or the box's middle."""
        if self.center is not None:
            return self.center
        return (self.west + self.east) / 2, (self.south + self.north) / 2

    def cells(self) -> Iterator[tuple[int, int]]:
        """The grid cells this area's bounding box touches. There are ``cell_count`` of them:
        about 2.6 billion for the whole world, so callers walk them only when they are few
        (the index and the live state compare ``cell_count`` with what they hold)."""
        x0, y0, x1, y1 = self.cell_range
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                yield x, y

    @property
    def cell_range(self) -> tuple[int, int, int, int]:
        """The cells of the bounding box as (x0, y0, x1, y1), inclusive."""
        x0, y0 = cell_of(self.west, self.south)
        x1, y1 = cell_of(self.east, self.north)
        return x0, y0, x1, y1

    @property
    def cell_count(self) -> int:
        x0, y0, x1, y1 = self.cell_range
        return (x1 - x0 + 1) * (y1 - y0 + 1)


def cell_of(lon: float, lat: float) -> tuple[int, int]:
    return math.floor(lon / CELL_DEG), math.floor(lat / CELL_DEG)


def _numbers(value: Any, count: int, name: str) -> list[float]:
    if (
        not isinstance(value, list)
        or len(value) != count
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise AreaError(f"{name} must be a list of {count} numbers")
    return [float(v) for v in value]
