"""Aligning a headset's local tracking frame to the world from pairs of points: the rigid
transformation (rotation and translation, scale 1; or with a free scale) that takes the
client's points onto their world positions with the least squares, by the SVD method of
Kabsch and Umeyama (Umeyama 1991, "Least-squares estimation of transformation parameters
between two point patterns"), which always gives a proper rotation (no reflection).

Both point sets are right-handed Cartesian coordinates in metres: the client's in its own frame
(whatever its axes), the world's in a local East-North-Up frame. The result maps client points
to world ones: ``world = scale * rotation @ client + translation``; :attr:`Alignment.matrix` is
that as a 4x4 matrix on column vectors, :attr:`Alignment.quaternion` the rotation as
``(x, y, z, w)``. Inputs that cannot determine a rotation (fewer than three points, NaN,
duplicates, points on one line) raise :class:`AlignmentError`; weak ones (nearly on a line,
close together, large residuals) are fitted and named in :attr:`Alignment.warnings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import ArrayLike

from tiles.crs.ellipsoid import FloatArray
from tiles.errors import CrsError

#: Points closer than this to each other are the same point (metres).
DUPLICATE_M: Final = 0.001
#: Below this ratio of the two largest spreads the points are on one line (no rotation about it).
COLLINEAR_RATIO: Final = 1e-4
#: Below this ratio they are nearly on one line: the rotation about it is weakly determined.
NEARLY_COLLINEAR_RATIO: Final = 0.1
#: Points spread over less than this (metres) turn a centimetre's error into a visible angle.
SMALL_SPREAD_M: Final = 2.0


class AlignmentError(CrsError):
    """Points that cannot determine an alignment; the message says why."""


@dataclass(frozen=True)
class Alignment:
    """The fitted transformation and how well it fits (see the module's description)."""

    rotation: FloatArray
    translation: FloatArray
    scale: float
    residuals: FloatArray
    warnings: list[str] = field(default_factory=list)

    @property
    def rms(self) -> float:
        """Root mean square of the residuals, metres."""
        return float(np.sqrt(np.mean(self.residuals**2)))

    @property
    def matrix(self) -> FloatArray:
        """4x4, on column vectors ``[x, y, z, 1]``: client frame to world (ENU) metres."""
        out = np.eye(4)
        out[:3, :3] = self.scale * self.rotation
        out[:3, 3] = self.translation
        return out

    @property
    def quaternion(self) -> tuple[float, float, float, float]:
        """The rotation as a unit quaternion ``(x, y, z, w)``, ``w >= 0``."""
        return quaternion_of(self.rotation)

    def apply(self, points: ArrayLike) -> FloatArray:
        """Client points (n, 3) in the world frame (n, 3)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        world: FloatArray = self.scale * p @ self.rotation.T + self.translation
        return world


def fit(
    client: ArrayLike,
    world: ArrayLike,
    *,
    free_scale: bool = False,
    accuracy_m: float = 0.05,
) -> Alignment:
    """The least-squares alignment of ``client`` points (n, 3) onto ``world`` points (n, 3),
    n >= 3; with ``free_scale`` the scale is fitted too. Residuals above ``accuracy_m`` (RMS)
    are named in the warnings."""
    try:
        c = np.asarray(client, dtype=np.float64)
        w = np.asarray(world, dtype=np.float64)
    except (TypeError, ValueError):
        raise AlignmentError("give as many client points as world points, each x, y, z") from None
    if c.ndim != 2 or c.shape[1] != 3 or c.shape != w.shape:
        raise AlignmentError("give as many client points as world points, each x, y, z")
    n = c.shape[0]
    if n < 3:
        raise AlignmentError(f"an alignment needs at least 3 pairs of points, got {n}")
    if not (np.isfinite(c).all() and np.isfinite(w).all()):
        raise AlignmentError("the points must be finite numbers (no NaN or infinity)")
    warnings = []
    for name, points in (("client", c), ("world", w)):
        _check_distinct(name, points)
        ratio, spread = _shape(points)
        if ratio < COLLINEAR_RATIO:
            raise AlignmentError(
                f"the {name} points lie on one line: the rotation about it is undetermined; "
                "add a point off that line"
            )
        if ratio < NEARLY_COLLINEAR_RATIO:
            warnings.append(
                f"the {name} points are nearly on one line (spread across it {ratio:.0%} of "
                "that along it): the rotation about it is weak; add a point off the line"
            )
        if spread < SMALL_SPREAD_M:
            warnings.append(
                f"the {name} points lie within {spread:.2f} m of each other: a centimetre "
                "off in one turns the frame visibly at a distance; spread them further apart"
            )
    c_mean, w_mean = c.mean(axis=0), w.mean(axis=0)
    cc, wc = c - c_mean, w - w_mean
    u, sigma, vt = np.linalg.svd(wc.T @ cc / n)
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection fits better: take the rotation
        d[2] = -1.0
    rotation = u @ np.diag(d) @ vt
    scale = 1.0
    if free_scale:
        variance = float((cc**2).sum() / n)
        scale = float((sigma * d).sum() / variance)
    translation = w_mean - scale * rotation @ c_mean
    residuals = np.linalg.norm(scale * c @ rotation.T + translation - w, axis=1)
    alignment = Alignment(rotation, translation, scale, residuals, warnings)
    if alignment.rms > accuracy_m:
        worst = int(np.argmax(residuals))
        warnings.append(
            f"the points fit to {alignment.rms:.3f} m RMS, more than {accuracy_m:g} m; pair "
            f"{worst} is {residuals[worst]:.3f} m off (a wrong pair, or a point measured badly?)"
        )
    return alignment


def _check_distinct(name: str, points: FloatArray) -> None:
    distances = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
    distances[np.diag_indices(len(points))] = np.inf
    i, j = np.unravel_index(int(np.argmin(distances)), distances.shape)
    if distances[i, j] < DUPLICATE_M:
        raise AlignmentError(
            f"{name} points {min(i, j)} and {max(i, j)} are the same point; each pair must be "
            "a different point"
        )


def _shape(points: FloatArray) -> tuple[float, float]:
    """How far the points are from a line (the second largest spread over the largest) and
    their largest spread (metres)."""
    centred = points - points.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    largest = float(singular[0])
    if largest == 0.0:
        return 0.0, 0.0
    spread = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    return float(singular[1]) / largest, spread


def quaternion_of(r: FloatArray) -> tuple[float, float, float, float]:
    """A rotation matrix as ``(x, y, z, w)`` (Shepperd's method: stable for any angle)."""
    trace = float(np.trace(r))
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        w, x, y, z = (
            0.25 * s,
            (r[2, 1] - r[1, 2]) / s,
            (r[0, 2] - r[2, 0]) / s,
            (r[1, 0] - r[0, 1]) / s,
        )
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = 2.0 * np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
        w, x, y, z = (
            (r[2, 1] - r[1, 2]) / s,
            0.25 * s,
            (r[0, 1] + r[1, 0]) / s,
            (r[0, 2] + r[2, 0]) / s,
        )
    elif r[1, 1] > r[2, 2]:
        s = 2.0 * np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])
        w, x, y, z = (
            (r[0, 2] - r[2, 0]) / s,
            (r[0, 1] + r[1, 0]) / s,
            0.25 * s,
            (r[1, 2] + r[2, 1]) / s,
        )
    else:
        s = 2.0 * np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])
        w, x, y, z = (
            (r[1, 0] - r[0, 1]) / s,
            (r[0, 2] + r[2, 0]) / s,
            (r[1, 2] + r[2, 1]) / s,
            0.25 * s,
        )
    sign = 1.0 if w >= 0 else -1.0
    return (float(sign * x), float(sign * y), float(sign * z), float(sign * w))
