"""Placement of source coordinates in the local East-North-Up frame of a tileset.

Two kinds of input:

- Georeferenced: coordinates in a CRS. A 2D CRS gets a vertical datum for its heights: NAP for
  RD New (so EPSG:28992 becomes EPSG:7415), ellipsoidal for anything else. Points go to ECEF with
  :class:`tiles.crs.Transformer` (RDNAPTRANS(TM)2018 for RD) and then into the ENU frame.
- Local: model metres (z up) with a placement: origin (ETRS89 longitude, latitude, ellipsoidal
  height), heading (degrees clockwise from north, the way Cesium ion places a model) and scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj
from numpy.typing import NDArray

from tiles.crs import EnuFrame, Operation, Transformer, parse_crs
from tiles.errors import CrsError

FloatArray = NDArray[np.float64]

_RD_NEW = 28992
_RD_NEW_NAP = 7415


def with_heights(crs: pyproj.CRS) -> pyproj.CRS:
    """The 3D CRS in which heights that come with 2D coordinates are meant."""
    if len(crs.axis_info) >= 3:
        return crs
    if crs.to_epsg(min_confidence=100) == _RD_NEW:
        return pyproj.CRS.from_epsg(_RD_NEW_NAP)
    if crs.is_geographic or crs.is_projected:
        return crs.to_3d()
    raise CrsError(f"cannot attach heights to {crs.name}")


@dataclass(frozen=True)
class LocalPlacement:
    """Where a model in local metres stands: ``origin`` (lon, lat, h), ``heading`` and ``scale``."""

    origin: tuple[float, float, float]
    heading_deg: float = 0.0
    scale: float = 1.0


@dataclass
class Placement:
    """Maps source points (n, 3) into the ENU ``frame`` shared by a tileset (metres, z up)."""

    frame: EnuFrame
    source: str
    operation: Operation | None
    _transformer: Transformer | None = None
    _local: LocalPlacement | None = None

    @classmethod
    def georeferenced(
        cls, crs: str | pyproj.CRS, frame: EnuFrame, *, allow_ballpark: bool = False
    ) -> Placement:
        """A placement for coordinates in ``crs`` (heights: see :func:`with_heights`)."""
        source = with_heights(parse_crs(crs))
        transformer = Transformer.from_crs(source, "EPSG:4978", allow_ballpark=allow_ballpark)
        code = source.to_epsg(min_confidence=100)
        label = f"EPSG:{code} ({source.name})" if code is not None else source.name
        return cls(frame, label, transformer.operation, _transformer=transformer)

    @classmethod
    def local(cls, placement: LocalPlacement, frame: EnuFrame | None = None) -> Placement:
        """A placement for model metres (z up) at ``placement``; ``frame`` defaults to the
        ENU frame at the placement's origin."""
        lon, lat, h = placement.origin
        return cls(
            frame or EnuFrame(lon, lat, h),
            f"local metres at lon {lon}, lat {lat}, h {h} (heading {placement.heading_deg} deg, "
            f"scale {placement.scale})",
            None,
            _local=placement,
        )

    def to_enu(self, points: NDArray[np.floating[Any]]) -> FloatArray:
        """Source points (n, 3) to ENU metres (n, 3) in :attr:`frame`; returns a new array."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        if self._local is not None:
            local = self._local
            angle = math.radians(local.heading_deg)
            c, s = math.cos(angle), math.sin(angle)
            x, y, z = (p * local.scale).T
            east, north = x * c + y * s, -x * s + y * c
            origin = EnuFrame(*local.origin)
            if origin == self.frame:
                return np.column_stack([east, north, z])
            e, n, u = self.frame.from_ecef(*origin.to_ecef(east, north, z))
            return np.column_stack([e, n, u])
        assert self._transformer is not None
        x, y, z = self._transformer.transform(p[:, 0], p[:, 1], p[:, 2])
        assert z is not None
        e, n, u = self.frame.from_ecef(x, y, z)
        return np.column_stack([e, n, u])


def geodetic_extent(
    crs: str | pyproj.CRS, points: FloatArray, *, allow_ballpark: bool = False
) -> FloatArray:
    """ETRS89 longitude, latitude, ellipsoidal height (n, 3) of the corners of ``points``'
    bounding box in ``crs`` (heights as in :func:`with_heights`)."""
    source = with_heights(parse_crs(crs))
    to_geodetic = Transformer.from_crs(source, "EPSG:4979", allow_ballpark=allow_ballpark)
    lo = points.min(axis=0)
    hi = points.max(axis=0)
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    lon, lat, h = to_geodetic.transform(corners[:, 0], corners[:, 1], corners[:, 2])
    assert h is not None
    return np.column_stack([lon, lat, h])


def frame_for(geodetic: FloatArray) -> EnuFrame:
    """The ENU frame for data spanning ``geodetic`` (n, 3) points: centred horizontally on them,
    at their lowest height."""
    lon = (geodetic[:, 0].min() + geodetic[:, 0].max()) / 2.0
    lat = (geodetic[:, 1].min() + geodetic[:, 1].max()) / 2.0
    return EnuFrame(float(lon), float(lat), float(geodetic[:, 2].min()))
