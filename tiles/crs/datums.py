"""Terrestrial reference frames at an epoch: ETRS89 (as ETRF2000, the realisation RDNAPTRANS(TM)
2018 uses), ITRF2014 and ITRF2020, related by the published 14-parameter time-dependent
Helmert transformations; WGS 84 (G2296) is taken as ITRF2020 (they agree to about 1 cm, EPSG's
"WGS 84 (G2296) to ITRF2020 (1)" is a null transformation).

The Eurasian plate moves about 2.5 cm a year in ITRF, so a position in ITRF2020 *at its epoch*
(what precise point positioning and most GNSS chips report) lies some 0.93 m from its ETRS89
coordinates in the Netherlands in 2026.9. An ITRF position without an epoch is therefore
ambiguous by decimetres: every function here takes the epoch (decimal year) explicitly.

Parameters (position-vector convention, EPSG method 1053, ``X' = X + T + D X + R X`` with
``R = [[0, -R3, R2], [R3, 0, -R1], [-R2, R1, 0]]`` and ``P(t) = P(t0) + dP/dt (t - t0)``):

- ITRF2020 -> ETRF2000: EUREF Technical Note 1 (2024), EPSG:10586, t0 = 2015.0;
- ITRF2014 -> ETRF2000: EUREF Technical Note 1, EPSG:8405, t0 = 2010.0;
- ITRF2020 -> ITRF2014: IERS (itrf.ign.fr, Transfo-ITRF2020_TRFs.txt), t0 = 2015.0.

A Helmert transformation is (to first order, as published) an affine map of geocentric
coordinates, so each is also a 4x4 matrix (:attr:`Helmert.matrix`), which composes with a
tileset's root transform. Coordinates are geocentric X, Y, Z in metres (ECEF).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import ArrayLike

from tiles.crs.ellipsoid import FloatArray
from tiles.errors import CrsError

Frame = Literal["ETRS89", "ITRF2014", "ITRF2020"]
#: Every frame and the names it is known by (``WGS84`` is WGS 84 (G2296), taken as ITRF2020).
FRAMES: Final[dict[str, Frame]] = {
    "ETRS89": "ETRS89", "ETRF2000": "ETRS89", "ITRF2014": "ITRF2014", "ITRF2020": "ITRF2020",
    "WGS84": "ITRF2020",
}  # fmt: skip
#: Epochs (decimal years) this module accepts: the parameters' validity with a margin.
EARLIEST_EPOCH: Final = 1989.0
LATEST_EPOCH: Final = 2100.0

_MAS: Final = math.pi / (180.0 * 3600.0 * 1000.0)  # one milliarcsecond in radians


@dataclass(frozen=True)
class _Parameters:
    """T (mm), D (ppb), R (mas) at ``t0`` and their rates per year."""

    t: tuple[float, float, float]
    d: float
    r: tuple[float, float, float]
    t_rate: tuple[float, float, float]
    d_rate: float
    r_rate: tuple[float, float, float]
    t0: float
    source: str


_PUBLISHED: Final[dict[tuple[Frame, Frame], _Parameters]] = {
    ("ITRF2020", "ETRS89"): _Parameters(
        t=(53.8, 51.8, -82.2), d=2.25, r=(2.106, 12.740, -20.592),
        t_rate=(0.1, 0.0, -1.7), d_rate=0.11, r_rate=(0.081, 0.490, -0.792), t0=2015.0,
        source="ITRF2020 to ETRF2000 (EUREF TN1 2024, EPSG:10586)",
    ),
    ("ITRF2014", "ETRS89"): _Parameters(
        t=(54.7, 52.2, -74.1), d=2.12, r=(1.701, 10.290, -16.632),
        t_rate=(0.1, 0.1, -1.9), d_rate=0.11, r_rate=(0.081, 0.490, -0.792), t0=2010.0,
        source="ITRF2014 to ETRF2000 (EUREF TN1, EPSG:8405)",
    ),
    ("ITRF2020", "ITRF2014"): _Parameters(
        t=(-1.4, -0.9, 1.4), d=-0.42, r=(0.0, 0.0, 0.0),
        t_rate=(0.0, -0.1, 0.2), d_rate=0.0, r_rate=(0.0, 0.0, 0.0), t0=2015.0,
        source="ITRF2020 to ITRF2014 (IERS; inverse of EPSG:9991)",
    ),
}  # fmt: skip


def frame(name: str) -> Frame:
    """The frame ``name`` stands for (``ETRS89``, ``ETRF2000``, ``ITRF2014``, ``ITRF2020``,
    ``WGS84``; case does not matter); :class:`CrsError` for any other."""
    found = FRAMES.get(name.strip().upper().replace(" ", ""))
    if found is None:
        raise CrsError(f"unknown datum {name[:40]!r}: use one of {', '.join(FRAMES)}")
    return found


def check_epoch(epoch: float) -> float:
    """``epoch`` as a float decimal year; :class:`CrsError` outside 1989..2100 or not finite."""
    value = float(epoch)
    if not math.isfinite(value) or not EARLIEST_EPOCH <= value <= LATEST_EPOCH:
        raise CrsError(
            f"epoch {epoch!r} is not a decimal year between {EARLIEST_EPOCH:g} and "
            f"{LATEST_EPOCH:g} (e.g. 2026.9)"
        )
    return value


@dataclass(frozen=True)
class Helmert:
    """The transformation of geocentric coordinates from ``source`` to ``target`` at
    ``epoch``: ``matrix`` is 4x4 (metres), applied to column vectors ``[X, Y, Z, 1]``."""

    source: Frame
    target: Frame
    epoch: float
    matrix: FloatArray
    description: str

    def apply(
        self, x: ArrayLike, y: ArrayLike, z: ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Transform arrays of X, Y, Z (metres); returns new arrays."""
        m = self.matrix
        xs, ys, zs = (np.asarray(c, dtype=np.float64) for c in (x, y, z))
        return (
            m[0, 0] * xs + m[0, 1] * ys + m[0, 2] * zs + m[0, 3],
            m[1, 0] * xs + m[1, 1] * ys + m[1, 2] * zs + m[1, 3],
            m[2, 0] * xs + m[2, 1] * ys + m[2, 2] * zs + m[2, 3],
        )

    def inverse(self) -> Helmert:
        return Helmert(
            self.target, self.source, self.epoch,
            np.asarray(np.linalg.inv(self.matrix), dtype=np.float64),
            f"inverse of {self.description}",
        )  # fmt: skip


def _matrix(parameters: _Parameters, epoch: float) -> FloatArray:
    dt = epoch - parameters.t0
    t = [(v + r * dt) / 1000.0 for v, r in zip(parameters.t, parameters.t_rate, strict=True)]
    d = (parameters.d + parameters.d_rate * dt) * 1e-9
    r1, r2, r3 = ((v + r * dt) * _MAS for v, r in zip(parameters.r, parameters.r_rate, strict=True))
    return np.array(
        [
            [1.0 + d, -r3, r2, t[0]],
            [r3, 1.0 + d, -r1, t[1]],
            [-r2, r1, 1.0 + d, t[2]],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def helmert(source: str, target: str, epoch: float) -> Helmert:
    """The Helmert transformation between two frames (names as :func:`frame` takes them) at
    ``epoch`` (decimal year): a published one, its inverse, or ITRF2014 <-> ITRF2020 and
    ETRS89 composed through the published pair. The identity for one frame to itself."""
    src, dst, year = frame(source), frame(target), check_epoch(epoch)
    if src == dst:
        return Helmert(src, dst, year, np.eye(4), "no-op (same frame)")
    published = _PUBLISHED.get((src, dst))
    if published is not None:
        return Helmert(src, dst, year, _matrix(published, year), published.source)
    reverse = _PUBLISHED.get((dst, src))
    if reverse is not None:
        return Helmert(dst, src, year, _matrix(reverse, year), reverse.source).inverse()
    raise CrsError(f"no transformation from {src} to {dst}")  # every pair is covered above
