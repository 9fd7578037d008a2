"""Output frames: where a client wants positions. ``wgs84`` gives [lon, lat, h] (degrees,
ellipsoidal metres); ``enu`` gives [east, north, up] metres from the client's origin, computed
with ``tiles.crs.EnuFrame`` (exact ellipsoidal maths, no flat-earth shortcut), so an AR client
places an overlay without geodesy of its own.

Either may name the client's ``datum``: ``ETRS89`` (the default, as everything is stored), or
``ITRF2020``, ``ITRF2014`` or ``WGS84`` (G2296, as ITRF2020) at an ``epoch`` (decimal year,
default: when the subscription was made), for a client positioned by GNSS in a frame that
moves against ETRS89 (0.93 m apart in the Netherlands in 2026.9). Positions are then given in
that datum, and an ENU ``origin`` is taken to be in it too. Areas are coarse and not shifted.

``aligned`` gives positions in a headset's own tracking frame: the ``matrix`` of an alignment
(``POST /api/v1/align``: client frame to ENU metres at its ``origin``, ETRS89) is inverted, so
an item comes as the x, y, z the headset would point at. A client names a stored alignment by
its ``id`` (the hub looks it up and adds ``origin`` and ``matrix`` before the frame is parsed)
or sends ``origin`` and ``matrix`` itself.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

import numpy as np

from arserver.datums import ClientDatum, client_datum
from arserver.errors import InputError
from tiles.crs import EnuFrame, ecef_to_geodetic, geodetic_to_ecef
from tiles.crs.ellipsoid import GRS80

log = logging.getLogger(__name__)

#: Finds a stored alignment: (the connection's owner, the alignment's id) -> its ``origin``
#: and ``matrix`` as an aligned frame carries them, or None when that owner has no such one.
AlignmentLookup = Callable[[str, str], "dict[str, Any] | None"]


class FrameError(InputError):
    """A frame a client sent that cannot be used."""


#: The scales an aligned frame may have (an alignment with free scale reports one; a
#: tracking frame in metres is near 1).
ALIGNED_SCALES = (0.01, 100.0)
#: How far an aligned frame's translation may reach (metres): the headset is near its origin.
MAX_ALIGNED_TRANSLATION_M = 100_000.0


@dataclass(frozen=True)
class Frame:
    """``origin`` None: geographic output. Otherwise ENU metres from ``origin`` (lon, lat, h
    in ``datum``), or with ``alignment`` the tracking frame that alignment maps to ENU at
    ``origin``. ``datum`` None: ETRS89."""

    origin: tuple[float, float, float] | None = None
    datum: ClientDatum | None = None
    _enu: EnuFrame | None = field(default=None, compare=False, repr=False)
    #: The origin's longitude and latitude in ETRS89, worked out once (see :attr:`reference`).
    _reference: tuple[float, float] | None = field(default=None, compare=False, repr=False)
    #: An aligned frame's alignment: its id (None: sent inline) and its matrix (4x4 rows,
    #: tracking frame to ENU at ``origin``); ``_to_client`` is the inverse's top 3 rows.
    alignment: tuple[str | None, tuple[tuple[float, ...], ...]] | None = None
    _to_client: np.ndarray | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, value: Any, *, now: datetime | None = None) -> Frame:
        if value is None:
            return cls()
        if not isinstance(value, dict) or value.get("type") not in ("wgs84", "enu", "aligned"):
            raise FrameError(
                "frame must be {'type': 'wgs84'}, {'type': 'enu', 'origin': [lon, lat, h]} "
                "(either optionally with 'datum': ETRS89, ITRF2020, ITRF2014 or WGS84, and "
                "'epoch') or {'type': 'aligned', 'id': ...} (an id from POST /api/v1/align)"
            )
        if value["type"] == "aligned":
            return cls._aligned(value)
        datum = _datum(value, now)
        if value["type"] == "wgs84":
            return cls(None, datum)
        origin = value.get("origin")
        if not _is_origin(origin):
            raise FrameError(
                "an enu frame needs origin [lon, lat, h] (degrees, ellipsoidal metres)"
            )
        lon, lat, h = (float(v) for v in origin)
        return cls((lon, lat, h), datum, EnuFrame(lon, lat, h), _in_etrs89(lon, lat, h, datum))

    @classmethod
    def _aligned(cls, value: dict[str, Any]) -> Frame:
        ref = value.get("id")
        if ref is not None and (not isinstance(ref, str) or not 0 < len(ref) <= 64):
            raise FrameError("an aligned frame's 'id' is the id POST /api/v1/align answered")
        if "datum" in value or "epoch" in value:
            raise FrameError("an aligned frame has no datum: its alignment is in ETRS89")
        if "matrix" not in value:
            if value.get("unavailable") is True:
                raise FrameError("alignments cannot be read just now: try again")
            if ref is None:
                raise FrameError("an aligned frame needs the 'id' of an alignment")
            raise FrameError(
                f"alignment {ref!r} is not known: it expired, was replaced by newer ones, or "
                "was made by another caller; align again (POST /api/v1/align)"
            )
        origin = value.get("origin")
        if not _is_origin(origin):
            raise FrameError(
                "an aligned frame needs origin [lon, lat, h] (degrees, ellipsoidal metres)"
            )
        matrix, scale = _rigid(value.get("matrix"))
        lon, lat, h = (float(v) for v in origin)
        inverse = np.empty((3, 4))
        inverse[:, :3] = matrix[:3, :3].T / scale**2  # (s R)^-1 = R^T / s
        inverse[:, 3] = -inverse[:, :3] @ matrix[:3, 3]
        rows = tuple(tuple(float(v) for v in line) for line in matrix)
        return cls((lon, lat, h), None, EnuFrame(lon, lat, h), (lon, lat), (ref, rows), inverse)

    @property
    def name(self) -> str:
        if self.origin is None:
            return "wgs84"
        return "enu" if self.alignment is None else "aligned"

    @property
    def key(self) -> tuple[Any, ...]:
        """What makes two frames give the same positions (for encoding a change once)."""
        if self.alignment is not None:
            return (self.origin, self.alignment[1])
        if self.datum is None:
            return (self.origin,)
        return (self.origin, self.datum.name, self.datum.epoch)

    def describe(self) -> dict[str, Any]:
        """The frame as a client sends it."""
        if self.alignment is not None and self.origin is not None:
            aligned: dict[str, Any] = {"type": "aligned"}
            if self.alignment[0] is not None:
                aligned["id"] = self.alignment[0]
            aligned["origin"] = list(self.origin)
            aligned["matrix"] = [list(line) for line in self.alignment[1]]
            return aligned
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
        if self._to_client is not None:  # ENU, then into the tracking frame
            client = self._to_client[:, :3] @ (r @ d) + self._to_client[:, 3]
            return [round(float(v), 4) for v in client]
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


def _is_origin(origin: Any) -> TypeGuard[list[float]]:
    return (
        isinstance(origin, list)
        and len(origin) == 3
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in origin)
        and all(math.isfinite(v) for v in origin)
        and -180 <= origin[0] <= 180
        and -90 <= origin[1] <= 90
    )


def _rigid(value: Any) -> tuple[np.ndarray, float]:
    """A 4x4 matrix (rows) of a rotation, a scale in :data:`ALIGNED_SCALES` and a translation
    within :data:`MAX_ALIGNED_TRANSLATION_M`, as an array, and its scale; FrameError
    otherwise."""
    if (
        not isinstance(value, list)
        or len(value) != 4
        or not all(isinstance(line, list) and len(line) == 4 for line in value)
        or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for line in value
            for v in line
        )
    ):
        raise FrameError("an aligned frame's 'matrix' is 4 rows of 4 finite numbers")
    matrix = np.asarray(value, dtype=np.float64)
    linear = matrix[:3, :3]
    determinant = float(np.linalg.det(linear))
    scale = math.copysign(abs(determinant) ** (1 / 3), determinant)
    low, high = ALIGNED_SCALES
    if (
        not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0], atol=1e-9)
        or not low <= scale <= high
        or not np.allclose(linear.T @ linear / scale**2, np.eye(3), atol=1e-6)
        or float(np.linalg.norm(matrix[:3, 3])) > MAX_ALIGNED_TRANSLATION_M
    ):
        raise FrameError(
            "an aligned frame's 'matrix' is a rotation with a scale and a translation "
            "(as POST /api/v1/align answers), last row [0, 0, 0, 1]"
        )
    return matrix, scale


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


def with_alignment(text: str, owner: str, lookup: AlignmentLookup) -> str:
    """A client message with an aligned frame that names an alignment by ``id``, with that
    alignment's ``origin`` and ``matrix`` put in (whatever the client sent for them is
    dropped); any other text as it is. Without such an alignment of ``owner`` the frame stays
    without a matrix, which :meth:`Frame.parse` refuses. Blocking (``lookup`` reads the
    database): run it off the event loop."""
    try:
        message = json.loads(text)
    except ValueError:
        return text
    if not isinstance(message, dict) or message.get("type") not in ("subscribe", "move"):
        return text
    frame = message.get("frame")
    if not isinstance(frame, dict) or frame.get("type") != "aligned":
        return text
    ref = frame.get("id")
    if not isinstance(ref, str) or not 0 < len(ref) <= 64:
        return text
    for name in ("origin", "matrix", "unavailable"):
        frame.pop(name, None)
    try:
        found = lookup(owner, ref)
    except Exception:  # the database is away: the client is told to try again
        log.warning("an alignment could not be read", exc_info=True)
        frame["unavailable"] = True
    else:
        if found is not None:
            frame["origin"], frame["matrix"] = found["origin"], found["matrix"]
    return json.dumps(message)
