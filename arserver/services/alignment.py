"""Aligning a headset's local tracking frame to the world: pairs of a point in the client's
frame and the same point in the world (ETRS89 longitude, latitude and ellipsoidal height; any
CRS with ``crs``, RD New + NAP included; or a feature of a published asset whose position the
server knows) give the rigid transformation from the client frame to an East-North-Up frame
at ``origin`` (:func:`tiles.crs.align.fit`).

The client frame is right-handed metres with ``y`` up (WebXR, ARKit, ARCore) or ``z`` up; it is
turned to z up (``(x, y, z)`` -> ``(x, -z, y)``) before the fit, and the answer maps the client's
coordinates as sent.

The transformation is stored for the caller (never the point pairs), under a random ``id`` a
live subscription can name (``"frame": {"type": "aligned", "id": ...}``) for ``lifetime``;
only the caller who made it can use it (its stable id: the token id, or the OpenID Connect
subject), and each caller keeps its ``keep`` newest.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
from sqlalchemy import Engine

from arserver.errors import InputError
from arserver.geometry import positions_to_etrs89
from arserver.live.frames import AlignmentLookup
from arserver.security.oidc import stable_subject
from arserver.security.policy import Caller
from arserver.services.places import resolve_place
from arserver.store.alignments import AlignmentRow, alignment_of, store_alignment
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
    owner: str,
    lifetime: timedelta,
    keep: int,
) -> dict[str, Any]:
    """The alignment as the API answers it: ``id`` (stored for ``owner``, the caller's
    stable id, until ``expires_at``), ``matrix`` (4x4 rows, client frame to ENU metres at
    ``origin``), ``quaternion`` (x, y, z, w), ``translation``, ``scale``, per-pair
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
    rows = [[float(v) for v in row] for row in matrix]
    created = datetime.now(UTC)
    stored = AlignmentRow(
        id=secrets.token_urlsafe(16), owner=owner, created_at=created,
        origin_lon=float(origin[0]), origin_lat=float(origin[1]), origin_h=float(origin[2]),
        matrix=rows, up=up, rms_m=float(fitted.rms),
    )  # fmt: skip
    with engine.begin() as connection:
        store_alignment(connection, stored, keep)
    return {
        "id": stored["id"],
        "expires_at": created + lifetime,
        "origin": [float(v) for v in origin],
        "up": up,
        "matrix": rows,
        "quaternion": list(quaternion),
        "translation": [float(v) for v in fitted.translation],
        "scale": fitted.scale,
        "residuals_m": [round(float(r), 6) for r in fitted.residuals],
        "rms_m": round(fitted.rms, 6),
        "warnings": fitted.warnings,
        "world": [[float(v) for v in point] for point in world],
    }


def lookup(engine: Engine, lifetime: timedelta) -> AlignmentLookup:
    """The live hub's lookup of stored alignments (:data:`AlignmentLookup`): a connection's
    owner (a token id, or an OpenID Connect record id) finds the alignments made under the
    same stable id within ``lifetime``."""

    def find(owner: str, alignment_id: str) -> dict[str, Any] | None:
        with engine.connect() as connection:
            row = alignment_of(
                connection, alignment_id, stable_subject(owner), datetime.now(UTC) - lifetime
            )
        if row is None:
            return None
        return {
            "origin": [row["origin_lon"], row["origin_lat"], row["origin_h"]],
            "matrix": row["matrix"],
        }

    return find


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
