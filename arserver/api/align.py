"""``POST /api/v1/align``: a headset's local frame aligned to the world from point pairs
(:mod:`arserver.services.alignment`)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Engine

from arserver.api.deps import get_engine, get_settings, optional_token
from arserver.api.models import CheckedModel
from arserver.config import Settings
from arserver.security.oidc import subject_of
from arserver.security.policy import Action, authorize
from arserver.security.tokens import TokenRecord
from arserver.services.alignment import Pair, align

#: The most point pairs one alignment takes.
MAX_PAIRS = 100


def _finite(values: list[float], what: str) -> list[float]:
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{what} must be finite numbers")
    return values


class FeatureRef(CheckedModel):
    asset: str = Field(max_length=64)
    feature: str = Field(max_length=200)


class PairIn(CheckedModel):
    """A point in the client frame and the same point in the world: ``world`` ([lon, lat, h]
    ETRS89, or x, y, z in ``crs``) or a ``feature`` of a published asset."""

    model_config = ConfigDict(extra="forbid")

    client: list[float] = Field(min_length=3, max_length=3, description="x, y, z metres")
    world: list[float] | None = Field(default=None, min_length=2, max_length=3)
    crs: str | None = Field(default=None, max_length=100, examples=["EPSG:7415"])
    feature: FeatureRef | None = None

    @field_validator("client", "world")
    @classmethod
    def _numbers(cls, value: list[float] | None) -> list[float] | None:
        return None if value is None else _finite(value, "coordinates")

    @model_validator(mode="after")
    def _one_place(self) -> PairIn:
        if (self.world is None) == (self.feature is None):
            raise ValueError("give either 'world' or 'feature'")
        return self


class AlignIn(CheckedModel):
    """Pairs of points (at least 3) and how to read the client's frame."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "up": "y",
                    "pairs": [
                        {"client": [0.0, 0.0, 0.0], "world": [121400.0, 487400.0, 0.5],
                         "crs": "EPSG:7415"},
                        {"client": [10.0, 0.0, 0.0], "world": [121410.0, 487400.0, 0.5],
                         "crs": "EPSG:7415"},
                        {"client": [0.0, 1.5, -8.0], "world": [121400.0, 487408.0, 2.0],
                         "crs": "EPSG:7415"},
                    ],
                }
            ]
        },
    )  # fmt: skip

    pairs: list[PairIn] = Field(min_length=1, max_length=MAX_PAIRS)
    up: Literal["y", "z"] = Field(
        default="y", description="The client frame's up axis (right-handed): y (WebXR, ARKit, "
        "ARCore) or z",
    )  # fmt: skip
    origin: list[float] | None = Field(
        default=None, min_length=3, max_length=3,
        description="[lon, lat, h] ETRS89 of the ENU frame; default: the world points' centroid",
    )  # fmt: skip
    free_scale: bool = Field(default=False, description="Fit a scale too (reported)")
    accuracy_m: float = Field(
        default=0.05, gt=0, le=10, description="Warn when the fit's RMS is larger"
    )

    @field_validator("origin")
    @classmethod
    def _origin(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return None
        _finite(value, "the origin")
        if not (-180 <= value[0] <= 180 and -90 <= value[1] <= 90):
            raise ValueError("the origin is [lon, lat, h] in degrees and ellipsoidal metres")
        return value


def align_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["placement"])

    @router.post(
        "/align",
        summary="Align a headset's local frame to the world from 3 or more point pairs",
        description="The rigid transformation (scale 1, or free with `free_scale`) from the "
        "client frame to East-North-Up metres at `origin`, as a 4x4 matrix (rows, on column "
        "vectors) and as quaternion (x, y, z, w) + translation, with per-pair residuals, RMS "
        "and warnings for weak configurations. Degenerate pairs are a 422 saying why. The "
        "transformation (not the pairs) is kept for the caller until `expires_at`: a live "
        'subscription with `"frame": {"type": "aligned", "id": ID}` then gets '
        "positions in the client frame.",
    )
    def aligned(
        body: AlignIn,
        engine: Annotated[Engine, Depends(get_engine)],
        settings: Annotated[Settings, Depends(get_settings)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        caller = authorize(token, Action.READ)
        pairs = [
            Pair(
                client=(p.client[0], p.client[1], p.client[2]),
                world=tuple(p.world) if p.world is not None else None,
                crs=p.crs,
                asset=p.feature.asset if p.feature else None,
                feature=p.feature.feature if p.feature else None,
            )
            for p in body.pairs
        ]
        return align(
            engine, pairs, up=body.up, origin=body.origin, free_scale=body.free_scale,
            accuracy_m=body.accuracy_m, caller=caller, owner=subject_of(caller),
            lifetime=settings.alignment_lifetime, keep=settings.alignments_per_caller,
        )  # fmt: skip

    return router
