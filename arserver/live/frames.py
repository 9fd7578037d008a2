"""Output frames: where a client wants positions. ``wgs84`` gives [lon, lat, h] (degrees,
ellipsoidal metres); ``enu`` gives [east, north, up] metres from the client's origin, computed
with ``tiles.crs.EnuFrame`` (exact ellipsoidal maths, no flat-earth shortcut), so an AR client
places an overlay without geodesy of its own.

Either may name the client's ``datum``: ``ETRS89`` (the default, as everything is stored), or
``ITRF2020``, ``ITRF2014`` or ``WGS84`` (G2296, as ITRF2020) at an ``epoch`` (decimal year,
default: when the subscription was made), for a client positioned by GNSS in a frame that
moves against ETRS89 (0.93 m apart in the Netherlands in 2026.9). Positions are then given in
that datum, and an ENU ``origin`` is taken to be in it too. Areas are coarse and not shifted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from arserver.datums import ClientDatum, client_datum
from arserver.errors import InputError
from tiles.crs import EnuFrame, ecef_to_geodetic, geodetic_to_ecef
from tiles.crs.ellipsoid import GRS80


class FrameError(InputError):
    """A frame a client sent that cannot be used."""


@dataclass(frozen=True)
class Frame:
    """``origin`` None: geographic output. Otherwise ENU metres from ``origin`` (lon, lat, h
    in ``datum``). ``datum`` None: ETRS89."""

    origin: tuple[float, float, float] | None = None
    datum: ClientDatum | None = None
    _enu: EnuFrame | None = field(default=None, compare=False, repr=False)
    #: The origin's longitude and latitude in ETRS89, worked out once (see :attr:`reference`).
    _reference: tuple[float, float] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, value: Any, *, now: datetime | None = None) -> Frame:
        if value is None:
            return cls()
        if not isinstance(value, dict) or value.get("type") not in ("wgs84", "enu"):
            raise FrameError(
                "frame must be {'type': 'wgs84'} or {'type': 'enu', 'origin': [lon, lat, h]}, "
                "optionally with 'datum' (ETRS89, ITRF2020, ITRF2014, WGS84) and 'epoch'"
            )
        datum = _datum(value, now)
        if value["type"] == "wgs84":
            return cls(None, datum)
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
        return cls((lon, lat, h), datum, EnuFrame(lon, lat, h), _in_etrs89(lon, lat, h, datum))

    @property
    def name(self) -> str:
        return "wgs84" if self.origin is None else "enu"

    @property
    def key(self) -> tuple[Any, ...]:
        """What makes two frames give the same positions (for encoding a change once)."""
        if self.datum is None:
            return (self.origin,)
        return (self.origin, self.datum.name, self.datum.epoch)

    def describe(self) -> dict[str, Any]:
        """The frame as a client sends it."""
        out: dict[str, Any] = (
            {"type": "wgs84"}
            if self.origin is None
            else {"type": "enu", "origin": list(self.origin)}
        )
        if self.datum is not None:
            out["datum"] = self.datum.name
            out["epoch"] = self.datum.epoch
        return out

    @property
    def reference(self) -> tuple[float, float] | None:
        """The ENU origin's longitude and latitude in ETRS89 (where proximity is measured
        from), None for a geographic frame."""
        return self._reference

    def position(self, lon: float, lat: float, h: float | None) -> list[float]:
        """The position (ETRS89 ``lon``, ``lat``, ellipsoidal ``h``) in this frame. ENU with an
        unknown height puts the point at the origin's height (the answer's ``up`` is then about
        0, less the earth's curvature); so does a change of datum (which needs a height)."""
        if self._enu is None or self.origin is None:
            if self.datum is None:
                return [lon, lat] if h is None else [lon, lat, h]
            moved = self._in_datum(lon, lat, 0.0 if h is None else h)
            glon, glat, gh = ecef_to_geodetic(moved[0], moved[1], moved[2], GRS80)
            return [float(glon), float(glat)] + ([] if h is None else [float(gh)])
        height = self.origin[2] if h is None else h
        d = self._in_datum(lon, lat, height) - np.asarray(self._enu.origin_ecef)
        r = self._enu.rotation
        return [round(float(r[i, 0] * d[0] + r[i, 1] * d[1] + r[i, 2] * d[2]), 4) for i in range(3)]

    def _in_datum(self, lon: float, lat: float, h: float) -> np.ndarray:
        """Geocentric coordinates of an ETRS89 position in this frame's datum."""
        x, y, z = geodetic_to_ecef(lon, lat, h, GRS80)
        point = np.array([float(x), float(y), float(z)])
        if self.datum is None:
            return point
        m = self.datum.matrix
        moved: np.ndarray = m[:3, :3] @ point + m[:3, 3]
        return moved


def _in_etrs89(lon: float, lat: float, h: float, datum: ClientDatum | None) -> tuple[float, float]:
    """Longitude and latitude in ETRS89 of a position in ``datum`` (None: ETRS89 already)."""
    if datum is None:
        return lon, lat
    x, y, z = geodetic_to_ecef(lon, lat, h, GRS80)
    back = np.linalg.inv(datum.matrix) @ np.array([float(x), float(y), float(z), 1.0])
    elon, elat, _ = ecef_to_geodetic(back[0], back[1], back[2], GRS80)
    return float(elon), float(elat)


def _datum(value: dict[str, Any], now: datetime | None) -> ClientDatum | None:
    datum, epoch = value.get("datum"), value.get("epoch")
    if datum is None and epoch is None:
        return None
    if not isinstance(datum, str) or len(datum) > 20:
        raise FrameError("a frame's 'datum' is one of ETRS89, ITRF2020, ITRF2014, WGS84")
    if epoch is not None and (
        not isinstance(epoch, int | float) or isinstance(epoch, bool) or not math.isfinite(epoch)
    ):
        raise FrameError("a frame's 'epoch' is a decimal year, e.g. 2026.9")
    try:
        return client_datum(datum, None if epoch is None else float(epoch), now=now or _now())
    except InputError as exc:
        raise FrameError(str(exc)) from None


def _now() -> datetime:
    return datetime.now(UTC)
