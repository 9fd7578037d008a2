"""Aligning a headset's local tracking frame to the world: pairs of a point in the client's
frame and the same point in the world (ETRS89 longitude, latitude and ellipsoidal height; any
CRS with ``crs``, RD New + NAP included; or a feature of a published asset whose position the
server knows) give the rigid transformation from the client frame to an East-North-Up frame
at ``origin`` (:func:`tiles.crs.align.fit`).

The client frame is right-handed metres with ``y`` up (WebXR, ARKit, ARCore) or ``z`` up; it is
turned to z up (``(x, y, z)`` -> ``(x, -z, y)``) before the fit, and the answer maps the client's
coordinates as sent. Nothing is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sqlalchemy import Engine

from arserver.errors import InputError
from arserver.geometry import positions_to_etrs89
from arserver.security.policy import Caller
from arserver.services.places import resolve_place
from tiles.crs import EnuFrame
from tiles.crs.align import AlignmentError, fit, quaternion_of

#: A y-up right-handed frame turned z up: (x, y, z) -> (x, -z, y).
_Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclass(frozen=True)
class Pair:
    """A point in the client frame and where it is in the world: ``world`` (in ``crs``; None:
    ETRS89 lon, lat, h) or an asset's ``feature``."""

    client: tuple[float, float, float]
    world: tuple[float, ...] | None = None
    crs: str | None = None
    asset: str | None = None
    feature: str | None = None


def align(
    engine: Engine,
    pairs: Sequence[Pair],
    *,
    up: Literal["y", "z"],
    origin: Sequence[float] | None,
    free_scale: bool,
    accuracy_m: float,
    caller: Caller | None,
) -> dict[str, Any]:
    """The alignment as the API answers it: ``matrix`` (4x4 rows, client frame to ENU metres
    at ``origin``), ``quaternion`` (x, y, z, w), ``translation``, ``scale``, per-pair
    ``residuals_m``, ``rms_m``, ``warnings``, the ``origin`` used (default: the centroid of the
    world points) and the world points in ETRS89. :class:`InputError` for pairs that cannot
    determine an alignment, world points in different CRSs, unknown features."""
    world = _world_points(engine, pairs, caller)
    if origin is None:
        centre = world.mean(axis=0)
        origin = (float(centre[0]), float(centre[1]), float(centre[2]))
    frame = EnuFrame(float(origin[0]), float(origin[1]), float(origin[2]))
    east, north, height = frame.from_geodetic(world[:, 0], world[:, 1], world[:, 2])
    enu = np.column_stack([east, north, height])
    client = np.asarray([p.client for p in pairs], dtype=np.float64)
    axes = _Y_UP_TO_Z_UP if up == "y" else np.eye(3)
    try:
        fitted = fit(client @ axes.T, enu, free_scale=free_scale, accuracy_m=accuracy_m)
    except AlignmentError as exc:
        raise InputError(str(exc)) from None
    rotation = fitted.rotation @ axes
    matrix = np.eye(4)
    matrix[:3, :3] = fitted.scale * rotation
    matrix[:3, 3] = fitted.translation
    quaternion = quaternion_of(rotation)
    return {
        "origin": [float(v) for v in origin],
        "up": up,
        "matrix": [[float(v) for v in row] for row in matrix],
        "quaternion": list(quaternion),
        "translation": [float(v) for v in fitted.translation],
        "scale": fitted.scale,
        "residuals_m": [round(float(r), 6) for r in fitted.residuals],
        "rms_m": round(fitted.rms, 6),
        "warnings": fitted.warnings,
        "world": [[float(v) for v in point] for point in world],
    }


def _world_points(engine: Engine, pairs: Sequence[Pair], caller: Caller | None) -> np.ndarray:
    """Every pair's world point as ETRS89 lon, lat, h (one transformation for all)."""
    systems = {p.crs for p in pairs if p.world is not None}
    if len(systems) > 1:
        raise InputError(
            "the world points are in different CRSs ("
            + ", ".join(sorted(s or "ETRS89 lon, lat, h" for s in systems))
            + "): give them all in one"
        )
    crs = next(iter(systems), None)
    located = [p.world for p in pairs if p.world is not None]
    converted: list[tuple[float, float, float]] = []
    if located:
        if any(len(w) != 3 for w in located):
            raise InputError("each world point needs its height: [lon, lat, h], or x, y, z in crs")
        converted = positions_to_etrs89([(w[0], w[1], w[2]) for w in located], crs)
    world: list[tuple[float, float, float]] = []
    given = iter(converted)
    with engine.connect() as connection:
        for index, pair in enumerate(pairs):
            if pair.world is not None:
                world.append(next(given))
                continue
            if pair.asset is None or pair.feature is None:
                raise InputError(f"pair {index} needs 'world' or an asset's 'feature'")
            place = resolve_place(
                connection, location=None, crs=None, asset_id=pair.asset,
                feature_id=pair.feature, caller=caller, extent=None,
            )  # fmt: skip
            if place.h is None:
                raise InputError(f"feature {pair.feature!r} of asset {pair.asset!r} has no height")
            world.append((place.lon, place.lat, place.h))
    return np.asarray(world, dtype=np.float64)
