"""Output frames: where a client wants positions. ``wgs84`` gives [lon, lat, h] (degrees,
ellipsoidal metres); ``enu`` gives [east, north, up] metres from the client's origin, computed
with ``tiles.crs.EnuFrame`` (exact ellipsoidal maths, no flat-earth shortcut), so an AR client
places an overlay without geodesy of its own."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from arserver.errors import InputError
from tiles.crs import EnuFrame, geodetic_to_ecef
from tiles.crs.ellipsoid import GRS80


class FrameError(InputError):
    """A frame a client sent that cannot be used."""


@dataclass(frozen=True)
class Frame:
    """``origin`` None: WGS 84 output. Otherwise ENU metres from ``origin`` (lon, lat, h)."""

    origin: tuple[float, float, float] | None = None
    _enu: EnuFrame | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, value: Any) -> Frame:
        if value is None:
            return cls()
        if not isinstance(value, dict) or value.get("type") not in ("wgs84", "enu"):
            raise FrameError(
                "frame must be {'type': 'wgs84'} or {'type': 'enu', 'origin': [lon, lat, h]}"
            )
        if value["type"] == "wgs84":
            return cls()
        origin = value.get("origin")
        if (
            not isinstance(origin, list)
            or len(origin) != 3
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in origin)
            or not all(math.isfinite(v) for v in origin)
            or not (-180 <= origin[0] <= 180 and -90 <= origin[1] <= 90)
        ):
            raise FrameError(
                "an enu frame needs origin [lon, lat, h] (degrees, ellipsoidal metres)"
            )
        lon, lat, h = (float(v) for v in origin)
        return cls((lon, lat, h), EnuFrame(lon, lat, h))

    @property
    def name(self) -> str:
        return "wgs84" if self.origin is None else "enu"

    def position(self, lon: float, lat: float, h: float | None) -> list[float]:
        """The position in this frame. ENU with an unknown height puts the point at the
        origin's height (the answer's ``up`` is then about 0, less the earth's curvature)."""
        if self._enu is None or self.origin is None:
            return [lon, lat] if h is None else [lon, lat, h]
        height = self.origin[2] if h is None else h
        x, y, z = geodetic_to_ecef(lon, lat, height, GRS80)
        d = (float(x) - self._enu.origin_ecef[0], float(y) - self._enu.origin_ecef[1],
             float(z) - self._enu.origin_ecef[2])  # fmt: skip
        r = self._enu.rotation
        return [round(float(r[i, 0] * d[0] + r[i, 1] * d[1] + r[i, 2] * d[2]), 4) for i in range(3)]
