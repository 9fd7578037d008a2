"""Local East-North-Up (ENU) frames: the frame the tiler builds geometry in and AR clients use.

An :class:`EnuFrame` is tangent to the GRS80 ellipsoid at an ETRS89 origin (longitude, latitude
in degrees, ellipsoidal height in metres). East, north and up are metres; geocentric (ECEF)
coordinates are metres in the Earth-centred frame (ETRS89, which 3D Tiles output uses as its
WGS 84 frame; see docs/georeferencing.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from tiles.crs.ellipsoid import GRS80, FloatArray, ecef_to_geodetic, geodetic_to_ecef
from tiles.errors import InvalidCoordinatesError


@dataclass(frozen=True)
class EnuFrame:
    """A local tangent frame at ``(lon, lat, h)``; immutable and cheap to copy."""

    lon: float
    lat: float
    h: float
    origin_ecef: FloatArray = field(init=False, repr=False, compare=False)
    rotation: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.lon, self.lat, self.h)):
            raise InvalidCoordinatesError(
                f"ENU origin must be finite, got {self.lon!r}, {self.lat!r}, {self.h!r}"
            )
        if not -90.0 <= self.lat <= 90.0:
            raise InvalidCoordinatesError(f"ENU origin latitude {self.lat!r} is not in -90..90")
        x, y, z = geodetic_to_ecef(self.lon, self.lat, self.h, GRS80)
        lam = math.radians(self.lon)
        phi = math.radians(self.lat)
        sl, cl, sp, cp = math.sin(lam), math.cos(lam), math.sin(phi), math.cos(phi)
        # Rows are the east, north and up unit vectors expressed in ECEF.
        rotation = np.array(
            [
                [-sl, cl, 0.0],
                [-sp * cl, -sp * sl, cp],
                [cp * cl, cp * sl, sp],
            ]
        )
        object.__setattr__(self, "origin_ecef", np.array([float(x), float(y), float(z)]))
        object.__setattr__(self, "rotation", rotation)

    def to_ecef(
        self, east: ArrayLike, north: ArrayLike, up: ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """ENU metres to geocentric X, Y, Z metres; returns new arrays."""
        enu = np.stack(
            np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (east, north, up)))
        )
        xyz = np.tensordot(self.rotation.T, enu, axes=1)
        return (
            xyz[0] + self.origin_ecef[0],
            xyz[1] + self.origin_ecef[1],
            xyz[2] + self.origin_ecef[2],
        )

    def from_ecef(
        self, x: ArrayLike, y: ArrayLike, z: ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Geocentric X, Y, Z metres to ENU metres; returns new arrays."""
        d = np.stack(
            [
                np.asarray(v, dtype=np.float64) - o
                for v, o in zip((x, y, z), self.origin_ecef, strict=True)
            ]
        )
        enu = np.tensordot(self.rotation, d, axes=1)
        return enu[0], enu[1], enu[2]

    def from_geodetic(
        self, lon: ArrayLike, lat: ArrayLike, h: ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """ETRS89 longitude, latitude (degrees), ellipsoidal height (metres) to ENU metres."""
        return self.from_ecef(*geodetic_to_ecef(lon, lat, h, GRS80))

    def to_geodetic(
        self, east: ArrayLike, north: ArrayLike, up: ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """ENU metres to ETRS89 longitude, latitude (degrees) and ellipsoidal height (metres)."""
        return ecef_to_geodetic(*self.to_ecef(east, north, up), GRS80)

    def enu_to_ecef_matrix(self) -> FloatArray:
        """4x4 matrix taking ENU column vectors [e, n, u, 1] to ECEF [X, Y, Z, 1]."""
        m = np.eye(4)
        m[:3, :3] = self.rotation.T
        m[:3, 3] = self.origin_ecef
        return m

    def tileset_transform(self) -> list[float]:
        """The ENU -> ECEF matrix as the 16 column-major numbers of a 3D Tiles ``transform``."""
        return [float(v) for v in self.enu_to_ecef_matrix().T.reshape(-1)]
