"""Vectorised transformations between any two CRS, with RD New + NAP done by RDNAPTRANS(TM)2018.

A :class:`Transformer` is a short pipeline of *legs*. Any leg that touches RD New (EPSG:28992),
alone or with NAP height (EPSG:7415 or ``EPSG:28992+5709``), is our own vectorised RDNAPTRANS(TM)
2018 (:mod:`tiles.crs.rdnaptrans`) with ETRS89 as the hub; every other leg is PROJ (pyproj).

Contracts:

- Coordinates are always in x, y[, z] order: easting, northing or longitude, latitude (degrees),
  whatever the CRS's official axis order; geocentric X, Y, Z in metres.
- Every transformer states the operation it runs and its accuracy in metres (:class:`Operation`).
- A transformation whose best operation cannot run here (a grid file is missing) or that PROJ can
  only do as a "ballpark" (e.g. NAP height taken as ellipsoidal height: 41-46 m wrong) raises
  :class:`OperationUnavailableError` naming what is missing, unless ``allow_ballpark=True``.
- ITRF2020 (EPSG:9988 geocentric, EPSG:9989 geographic 3D), ITRF2014 (EPSG:7789, EPSG:7912)
  and WGS 84 (G2296) (EPSG:10604, EPSG:10605, taken as ITRF2020) are positions at an epoch:
  :meth:`Transformer.from_crs` needs ``epoch`` (decimal year) for them and refuses without
  one; they reach ETRS89 by the time-dependent Helmert transformations of
  :mod:`tiles.crs.datums`. ETRF2000 (EPSG:7930, 7931, 9067) is ETRS89.
- Frame convention: with ``wgs84_as_etrs89=True`` (the default) WGS 84 (EPSG:4326, 4979, 4978) is
  taken to be ETRS89 whenever the other side is ETRS89-based, as the Dutch national 3D tilesets
  do; see docs/georeferencing.md. The numbers agree with PROJ's null "ETRS89 to WGS 84 (1)"
  transformation to about 0.1 mm (GRS80 vs WGS 84 ellipsoid); the stated accuracy differs, as PROJ
  counts 1 m for the ambiguity between the two frames.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyproj
from numpy.typing import ArrayLike
from pyproj.exceptions import CRSError as ProjCRSError
from pyproj.exceptions import ProjError
from pyproj.transformer import TransformerGroup

from tiles.crs.datums import Frame, check_epoch, helmert
from tiles.crs.ellipsoid import GRS80, FloatArray, ecef_to_geodetic, geodetic_to_ecef
from tiles.crs.rdnaptrans import (
    RDNAPTRANS_ACCURACY_M,
    BoolArray,
    etrs89_to_rd_masked,
    rd_to_etrs89_ecef_masked,
    rd_to_etrs89_masked,
)
from tiles.errors import (
    CrsError,
    InvalidCoordinatesError,
    OperationUnavailableError,
    OutsideGridError,
    UnknownCrsError,
)

_RD_NEW = 28992
_NAP_HEIGHT = 5709
_ETRS89_GEOG_2D = 4258
_ETRS89_GEOG_3D = 4937
_ETRS89_GEOCENTRIC = 4936
_WGS84_AS_ETRS89 = {4326: _ETRS89_GEOG_2D, 4979: _ETRS89_GEOG_3D, 4978: _ETRS89_GEOCENTRIC}
#: ETRF2000, the realisation of ETRS89 that RDNAPTRANS(TM)2018 uses, is ETRS89 here.
_ETRF2000_AS_ETRS89 = {9067: _ETRS89_GEOG_2D, 7931: _ETRS89_GEOG_3D, 7930: _ETRS89_GEOCENTRIC}
#: CRSs in a frame that moves against ETRS89 (positions need their epoch): EPSG code ->
#: (frame, geocentric?). WGS 84 (G2296) is taken as ITRF2020 (EPSG: a null transformation).
_EPOCH_FRAMES: dict[int, tuple[Frame, bool]] = {
    9988: ("ITRF2020", True), 9989: ("ITRF2020", False), 7789: ("ITRF2014", True),
    7912: ("ITRF2014", False), 10604: ("ITRF2020", True), 10605: ("ITRF2020", False),
}  # fmt: skip

#: Points per chunk: keeps temporaries in cache and memory bounded for any input size.
CHUNK_POINTS = 1 << 16

Coords = tuple[FloatArray, FloatArray, FloatArray | None]
LegFunction = Callable[[FloatArray, FloatArray, FloatArray | None], tuple[Coords, BoolArray | None]]


@dataclass(frozen=True)
class Operation:
    """What a transformer does.

    ``accuracy_m`` is the accuracy of the whole pipeline in metres (the sum of its steps'), or
    None when PROJ does not know it. ``degraded`` is True only when the caller allowed a ballpark
    or a non-best operation.
    """

    description: str
    accuracy_m: float | None
    steps: tuple[str, ...]
    degraded: bool = False

    def summary(self) -> str:
        accuracy = "unknown" if self.accuracy_m is None else f"{self.accuracy_m:g} m"
        flag = " [DEGRADED: ballpark or not the best operation]" if self.degraded else ""
        return f"{self.description} (accuracy {accuracy}){flag}"


@dataclass(frozen=True)
class _Leg:
    name: str
    accuracy_m: float | None
    run: LegFunction
    degraded: bool = False
    # How to describe input points when this leg finds some outside its area.
    input_names: str = "x y"


def parse_crs(definition: str | int | pyproj.CRS) -> pyproj.CRS:
    """A CRS from anything PROJ accepts ("EPSG:7415", 28992, WKT, PROJJSON, a pyproj.CRS)."""
    if isinstance(definition, pyproj.CRS):
        return definition
    try:
        return pyproj.CRS.from_user_input(definition)
    except ProjCRSError as exc:
        raise UnknownCrsError(f"unknown CRS {definition!r}: {exc}") from exc


def _epsg(crs: pyproj.CRS) -> int | None:
    code = crs.to_epsg(min_confidence=100)
    return int(code) if code is not None else None


def _crs_name(crs: pyproj.CRS) -> str:
    code = _epsg(crs)
    return f"EPSG:{code} ({crs.name})" if code is not None else crs.name


def _rd_kind(crs: pyproj.CRS) -> str | None:
    """'rd' for RD New, 'rdnap' for RD New + NAP height, None for anything else."""
    if crs.is_compound:
        parts = [_epsg(sub) for sub in crs.sub_crs_list]
        return "rdnap" if parts == [_RD_NEW, _NAP_HEIGHT] else None
    return "rd" if _epsg(crs) == _RD_NEW else None


def _is_3d(crs: pyproj.CRS) -> bool:
    return len(crs.axis_info) >= 3


def _is_etrs89_based(crs: pyproj.CRS) -> bool:
    horizontal = crs.sub_crs_list[0] if crs.is_compound else crs
    datum = horizontal.datum
    return datum is not None and datum.name.startswith("European Terrestrial Reference System 1989")


def _is_ballpark(name: str) -> bool:
    return "ballpark" in name.lower()


def _accuracy(value: float) -> float | None:
    return None if value is None or value < 0 else float(value)


def _proj_leg(source: pyproj.CRS, target: pyproj.CRS, allow_ballpark: bool) -> _Leg:
    """A PROJ leg using the best operation, or a clear error when it cannot run here."""
    with warnings.catch_warnings():
        # pyproj warns when the best operation lacks a grid; we raise (or degrade) ourselves.
        warnings.simplefilter("ignore")
        group = TransformerGroup(source, target, always_xy=True)
    available = list(group.transformers)
    best_missing = None if group.best_available else group.unavailable_operations[0]
    if best_missing is not None:
        grids = tuple(g.short_name for g in best_missing.grids if not g.available)
        if not allow_ballpark or not available:
            raise OperationUnavailableError(
                f"the best transformation from {_crs_name(source)} to {_crs_name(target)} "
                f"('{best_missing.name}') needs grid file(s) {', '.join(grids)}, which are not "
                "installed; install them in the PROJ data directory, or allow a degraded "
                "transformation explicitly",
                missing_grids=grids,
            )
    if not available:
        raise OperationUnavailableError(
            f"PROJ knows no transformation from {_crs_name(source)} to {_crs_name(target)}"
        )
    chosen = available[0]
    ballpark = _is_ballpark(chosen.description)
    if ballpark and not allow_ballpark:
        raise OperationUnavailableError(
            f"only a ballpark transformation exists from {_crs_name(source)} to "
            f"{_crs_name(target)} ('{chosen.description}'); it can be metres to tens of metres "
            "off. Allow it explicitly if that is acceptable"
        )
    target_3d = _is_3d(target)

    def run(x: FloatArray, y: FloatArray, z: FloatArray | None) -> tuple[Coords, None]:
        with warnings.catch_warnings():
            # pyproj first tries a scalar fast path, which NumPy warns about for 1-point arrays.
            warnings.filterwarnings(
                "ignore", "Conversion of an array with ndim > 0", DeprecationWarning
            )
            try:
                if z is None:
                    ox, oy = chosen.transform(x, y, errcheck=True)
                    return (np.asarray(ox), np.asarray(oy), None), None
                ox, oy, oz = chosen.transform(x, y, z, errcheck=True)
            except ProjError as exc:
                raise CrsError(f"PROJ could not transform the points: {exc}") from exc
        return (np.asarray(ox), np.asarray(oy), np.asarray(oz) if target_3d else None), None

    return _Leg(
        name=chosen.description,
        accuracy_m=_accuracy(chosen.accuracy),
        run=run,
        degraded=ballpark or best_missing is not None,
    )


def _rd_to_etrs89_leg(with_height: bool) -> _Leg:
    def run(x: FloatArray, y: FloatArray, z: FloatArray | None) -> tuple[Coords, BoolArray]:
        lat, lon, h, inside = rd_to_etrs89_masked(x, y, z if with_height else None)
        return (lon, lat, h), inside

    name = "RDNAPTRANS(TM)2018 variant 1: RD New" + (" + NAP height" if with_height else "")
    return _Leg(
        name=f"{name} -> ETRS89",
        accuracy_m=RDNAPTRANS_ACCURACY_M,
        run=run,
        input_names="RD x y",
    )


def _etrs89_to_rd_leg(with_height: bool) -> _Leg:
    def run(x: FloatArray, y: FloatArray, z: FloatArray | None) -> tuple[Coords, BoolArray]:
        rx, ry, nap, inside = etrs89_to_rd_masked(y, x, z if with_height else None)
        return (rx, ry, nap), inside

    name = "RDNAPTRANS(TM)2018 variant 1: ETRS89 -> RD New" + (
        " + NAP height" if with_height else ""
    )
    return _Leg(name=name, accuracy_m=RDNAPTRANS_ACCURACY_M, run=run, input_names="lon lat")


def _rdnap_to_etrs89_geocentric_leg() -> _Leg:
    def run(x: FloatArray, y: FloatArray, z: FloatArray | None) -> tuple[Coords, BoolArray]:
        assert z is not None  # checked by Transformer.transform
        gx, gy, gz, inside = rd_to_etrs89_ecef_masked(x, y, z)
        return (gx, gy, gz), inside

    return _Leg(
        name="RDNAPTRANS(TM)2018 variant 1: RD New + NAP height -> ETRS89 geocentric",
        accuracy_m=RDNAPTRANS_ACCURACY_M,
        run=run,
        input_names="RD x y",
    )


def _etrs89_geocentric_leg() -> _Leg:
    def run(x: FloatArray, y: FloatArray, z: FloatArray | None) -> tuple[Coords, None]:
        assert z is not None  # checked by Transformer.transform
        return geodetic_to_ecef(x, y, z, GRS80), None

    return _Leg(name="ETRS89 geographic 3D -> geocentric (GRS80)", accuracy_m=0.0, run=run)


@dataclass
class Transformer:
    """Transforms coordinate arrays from ``source`` to ``target``; build with :meth:`from_crs`."""

    source: pyproj.CRS
    target: pyproj.CRS
    operation: Operation
    _legs: tuple[_Leg, ...] = field(repr=False)

    @classmethod
    def from_crs(
        cls,
        source: str | int | pyproj.CRS,
        target: str | int | pyproj.CRS,
        *,
        allow_ballpark: bool = False,
        wgs84_as_etrs89: bool = True,
        epoch: float | None = None,
    ) -> Transformer:
        """Plan the transformation; raises :class:`UnknownCrsError` or
        :class:`OperationUnavailableError` before any coordinates are touched. ``epoch``
        (decimal year, e.g. 2026.9) is the epoch of the ITRF side's coordinates; it is
        required when a side is ITRF2014, ITRF2020 or WGS 84 (G2296) (a :class:`CrsError`
        otherwise), and ignored when neither is."""
        src = parse_crs(source)
        dst = parse_crs(target)
        steps: list[str] = []
        legs = _plan_with_epoch(src, dst, allow_ballpark, wgs84_as_etrs89, steps, epoch)
        accuracies = [leg.accuracy_m for leg in legs]
        accuracy = None if any(a is None for a in accuracies) else sum(a or 0.0 for a in accuracies)
        names = [leg.name for leg in legs] + steps
        description = " + ".join(names) if names else "no-op (same CRS)"
        operation = Operation(
            description=description,
            accuracy_m=accuracy if names else 0.0,
            steps=tuple(names),
            degraded=any(leg.degraded for leg in legs),
        )
        return cls(src, dst, operation, tuple(legs))

    @property
    def source_is_3d(self) -> bool:
        return _is_3d(self.source)

    @property
    def target_is_3d(self) -> bool:
        return _is_3d(self.target)

    def transform(
        self, x: ArrayLike, y: ArrayLike, z: ArrayLike | None = None
    ) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        """Transform 1-D arrays of x, y and optional z; returns new arrays.

        The result has a z array exactly when ``z`` is given and the target has a vertical
        axis. Raises :class:`InvalidCoordinatesError` for NaN/inf or mismatched lengths,
        :class:`OutsideGridError` for points outside a grid's area, and :class:`CrsError` when
        heights are missing where the target needs them or given where the source has none.
        """
        xs, ys, zs = _as_columns(x, y, z)
        if zs is not None and not self.source_is_3d:
            raise CrsError(
                f"{_crs_name(self.source)} has no height axis, but heights were given"
                + ("; use EPSG:7415 for RD New + NAP height" if _rd_kind(self.source) else "")
            )
        if zs is None and self.target.is_geocentric:
            raise CrsError(f"{_crs_name(self.target)} is geocentric: heights (z) are required")
        n = xs.size
        out_x = np.empty(n)
        out_y = np.empty(n)
        out_z = np.empty(n) if zs is not None and self.target_is_3d else None
        outside: dict[int, BoolArray] = {}
        for start in range(0, n, CHUNK_POINTS):
            stop = min(start + CHUNK_POINTS, n)
            cx, cy = xs[start:stop], ys[start:stop]
            cz = None if zs is None else zs[start:stop]
            for number, leg in enumerate(self._legs):
                (cx, cy, cz), inside = leg.run(cx, cy, cz)
                if inside is not None and not inside.all():
                    mask = outside.setdefault(number, np.zeros(n, dtype=bool))
                    mask[start:stop] |= ~inside
            out_x[start:stop] = cx
            out_y[start:stop] = cy
            if out_z is not None and cz is not None:
                out_z[start:stop] = cz
        if outside:
            number, mask = min(outside.items())
            _raise_outside(self._legs[number], mask, xs, ys)
        return out_x, out_y, out_z


def _raise_outside(leg: _Leg, outside: BoolArray, xs: FloatArray, ys: FloatArray) -> None:
    where = np.flatnonzero(outside)
    i = int(where[0])
    raise OutsideGridError(
        f"{where.size} point(s) outside the area of '{leg.name}' (ETRS89 latitude 50..56 N, "
        f"longitude 2..8 E); the first is point {i}: x={float(xs[i])!r} y={float(ys[i])!r}",
        indices=tuple(int(k) for k in where[:10]),
        count=int(where.size),
    )


def _as_columns(
    x: ArrayLike, y: ArrayLike, z: ArrayLike | None
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    try:
        columns = [
            np.ascontiguousarray(np.atleast_1d(np.asarray(c, dtype=np.float64)))
            for c in (x, y) + (() if z is None else (z,))
        ]
    except (TypeError, ValueError) as exc:
        raise InvalidCoordinatesError(f"coordinates are not numbers: {exc}") from exc
    if any(c.ndim != 1 or c.size != columns[0].size for c in columns):
        raise InvalidCoordinatesError("x, y and z must be 1-D arrays of the same length")
    finite = np.ones(columns[0].size, dtype=bool)
    for c in columns:
        finite &= np.isfinite(c)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise InvalidCoordinatesError(
            f"{int((~finite).sum())} point(s) with NaN or infinite coordinates; the first is "
            f"point {bad}",
            index=bad,
        )
    return columns[0], columns[1], (columns[2] if z is not None else None)


def epoch_frame(crs: pyproj.CRS) -> tuple[Frame, bool] | None:
    """The moving frame of ``crs`` and whether it is geocentric, or None for a CRS whose
    positions need no epoch here."""
    code = _epsg(crs)
    return _EPOCH_FRAMES.get(code) if code is not None else None


def _plan_with_epoch(
    src: pyproj.CRS,
    dst: pyproj.CRS,
    allow_ballpark: bool,
    wgs84_as_etrs89: bool,
    steps: list[str],
    epoch: float | None,
) -> list[_Leg]:
    """The legs, with ITRF sides taken to and from ETRS89 geocentric by a Helmert leg."""
    src, dst = _etrf2000_as_etrs89(src), _etrf2000_as_etrs89(dst)
    src_frame, dst_frame = epoch_frame(src), epoch_frame(dst)
    if src_frame is None and dst_frame is None:
        return _plan(src, dst, allow_ballpark, wgs84_as_etrs89, steps)
    if epoch is None:
        moving = _crs_name(src if src_frame is not None else dst)
        raise CrsError(
            f"{moving} is a position at an epoch: give the epoch (decimal year, e.g. 2026.9); "
            "without it the position is ambiguous by decimetres (the plate moves 2.5 cm a year)"
        )
    year = check_epoch(epoch)
    hub = pyproj.CRS.from_epsg(_ETRS89_GEOCENTRIC)
    legs: list[_Leg] = []
    if src_frame is not None:
        legs.extend(_to_geocentric_legs(src_frame))
        from_frame = src_frame[0]
    else:
        legs.extend(_plan(src, hub, allow_ballpark, wgs84_as_etrs89, steps))
        from_frame = "ETRS89"
    to_frame: Frame = dst_frame[0] if dst_frame is not None else "ETRS89"
    legs.append(_helmert_leg(from_frame, to_frame, year))
    if dst_frame is not None:
        legs.extend(_from_geocentric_legs(dst_frame))
    else:
        legs.extend(_plan(hub, dst, allow_ballpark, wgs84_as_etrs89, steps))
    return legs


def _etrf2000_as_etrs89(crs: pyproj.CRS) -> pyproj.CRS:
    code = _epsg(crs)
    if code in _ETRF2000_AS_ETRS89:
        return pyproj.CRS.from_epsg(_ETRF2000_AS_ETRS89[code])
    return crs


def _to_geocentric_legs(moving: tuple[Frame, bool]) -> list[_Leg]:
    if moving[1]:
        return []

    def run(x: FloatArray, y: FloatArray, z: FloatArray | None) -> tuple[Coords, None]:
        if z is None:
            raise CrsError(f"{moving[0]} positions need heights to change frame")
        return geodetic_to_ecef(x, y, z, GRS80), None

    return [_Leg(f"{moving[0]} geographic 3D -> geocentric (GRS80)", 0.0, run)]


def _from_geocentric_legs(moving: tuple[Frame, bool]) -> list[_Leg]:
    if moving[1]:
        return []

    def run(x: FloatArray, y: FloatArray, z: FloatArray | None) -> tuple[Coords, None]:
        assert z is not None  # geocentric coordinates always have one
        lon, lat, h = ecef_to_geodetic(x, y, z, GRS80)
        return (lon, lat, h), None

    return [_Leg(f"{moving[0]} geocentric -> geographic 3D (GRS80)", 0.0, run)]


def _helmert_leg(source: Frame, target: Frame, epoch: float) -> _Leg:
    transformation = helmert(source, target, epoch)

    def run(x: FloatArray, y: FloatArray, z: FloatArray | None) -> tuple[Coords, None]:
        if z is None:
            raise CrsError("a change of frame needs heights (z)")
        return transformation.apply(x, y, z), None

    # EPSG states 0.01 m for the ETRF2000 transformations and 0.001 m between ITRFs.
    accuracy = 0.001 if "ETRS89" not in (source, target) else 0.01
    return _Leg(f"{transformation.description} at epoch {epoch:g}", accuracy, run)


def _plan(
    src: pyproj.CRS,
    dst: pyproj.CRS,
    allow_ballpark: bool,
    wgs84_as_etrs89: bool,
    steps: list[str],
) -> list[_Leg]:
    src_rd, dst_rd = _rd_kind(src), _rd_kind(dst)
    if src_rd is None and dst_rd is None:
        if src == dst:
            return []
        src, dst = _apply_convention(src, dst, wgs84_as_etrs89, steps)
        return [_proj_leg(src, dst, allow_ballpark)]
    legs: list[_Leg] = []
    if src_rd is not None:
        legs.append(_rd_to_etrs89_leg(src_rd == "rdnap"))
        hub = pyproj.CRS.from_epsg(_ETRS89_GEOG_3D if src_rd == "rdnap" else _ETRS89_GEOG_2D)
    else:
        hub = pyproj.CRS.from_epsg(_ETRS89_GEOG_3D if dst_rd == "rdnap" else _ETRS89_GEOG_2D)
        legs.extend(_to_hub_legs(src, hub, allow_ballpark, wgs84_as_etrs89, steps))
    if dst_rd is not None:
        legs.append(_etrs89_to_rd_leg(dst_rd == "rdnap"))
    else:
        legs.extend(_from_hub_legs(hub, dst, allow_ballpark, wgs84_as_etrs89, steps))
    if src_rd == "rdnap" and len(legs) == 2 and legs[1].name == _etrs89_geocentric_leg().name:
        return [_rdnap_to_etrs89_geocentric_leg()]  # the tiler's hot path, fused
    return legs


def _to_hub_legs(
    src: pyproj.CRS, hub: pyproj.CRS, allow_ballpark: bool, convention: bool, steps: list[str]
) -> list[_Leg]:
    src, _ = _apply_convention(src, hub, convention, steps)
    if _epsg(src) in (_ETRS89_GEOG_2D, _ETRS89_GEOG_3D):
        return []  # already ETRS89 longitude, latitude (x, y order throughout)
    return [_proj_leg(src, hub, allow_ballpark)]


def _from_hub_legs(
    hub: pyproj.CRS, dst: pyproj.CRS, allow_ballpark: bool, convention: bool, steps: list[str]
) -> list[_Leg]:
    _, dst = _apply_convention(hub, dst, convention, steps)
    code = _epsg(dst)
    if code in (_ETRS89_GEOG_2D, _ETRS89_GEOG_3D):
        return []
    if code == _ETRS89_GEOCENTRIC and _is_3d(hub):
        return [_etrs89_geocentric_leg()]
    return [_proj_leg(hub, dst, allow_ballpark)]


def _apply_convention(
    src: pyproj.CRS, dst: pyproj.CRS, convention: bool, steps: list[str]
) -> tuple[pyproj.CRS, pyproj.CRS]:
    """Swap a WGS 84 side for its ETRS89 twin when the other side is ETRS89-based."""
    if not convention:
        return src, dst
    src_code, dst_code = _epsg(src), _epsg(dst)
    if src_code in _WGS84_AS_ETRS89 and _is_etrs89_based(dst):
        steps.append(f"EPSG:{src_code} taken as ETRS89 (frame convention)")
        return pyproj.CRS.from_epsg(_WGS84_AS_ETRS89[src_code]), dst
    if dst_code in _WGS84_AS_ETRS89 and _is_etrs89_based(src):
        steps.append(f"EPSG:{dst_code} taken as ETRS89 (frame convention)")
        return src, pyproj.CRS.from_epsg(_WGS84_AS_ETRS89[dst_code])
    return src, dst
