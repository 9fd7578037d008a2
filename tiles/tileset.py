"""3D Tiles 1.1 tileset objects (``Tileset``, ``Tile``, ``Box``) and their JSON form.

Boxes are in the frame of the tile that holds them: for our tilesets, the East-North-Up frame of
the root ``transform`` (metres, z up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Refine = Literal["ADD", "REPLACE"]


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in the tile frame, given by its minimum and maximum corners."""

    minimum: tuple[float, float, float]
    maximum: tuple[float, float, float]

    @classmethod
    def around(cls, points: NDArray[np.floating[Any]]) -> Box:
        """The tightest axis-aligned box containing ``points`` (n, 3)."""
        lo = points.min(axis=0)
        hi = points.max(axis=0)
        return cls(
            (float(lo[0]), float(lo[1]), float(lo[2])), (float(hi[0]), float(hi[1]), float(hi[2]))
        )

    def union(self, other: Box) -> Box:
        lo = np.minimum(self.minimum, other.minimum)
        hi = np.maximum(self.maximum, other.maximum)
        return Box(
            (float(lo[0]), float(lo[1]), float(lo[2])), (float(hi[0]), float(hi[1]), float(hi[2]))
        )

    @property
    def center(self) -> NDArray[np.float64]:
        return (np.asarray(self.minimum, dtype=np.float64) + self.maximum) / 2.0

    @property
    def size(self) -> NDArray[np.float64]:
        return np.asarray(self.maximum, dtype=np.float64) - self.minimum

    @property
    def diagonal(self) -> float:
        return float(np.linalg.norm(self.size))

    def to_list(self) -> list[float]:
        """The 12 numbers of a 3D Tiles ``box``: centre, then the three half-axis vectors.

        A flat extent gets a half-thickness of 1 mm so that the box is never degenerate.
        """
        c = self.center
        half = np.maximum(self.size / 2.0, 0.001)
        return [
            float(c[0]), float(c[1]), float(c[2]),
            float(half[0]), 0.0, 0.0,
            0.0, float(half[1]), 0.0,
            0.0, 0.0, float(half[2]),
        ]  # fmt: skip


@dataclass
class Tile:
    """One tile; ``content_uri`` is relative to the tileset.json."""

    box: Box
    geometric_error: float
    content_uri: str | None = None
    refine: Refine | None = None
    transform: list[float] | None = None
    children: list[Tile] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.transform is not None:
            result["transform"] = self.transform
        result["boundingVolume"] = {"box": self.box.to_list()}
        result["geometricError"] = self.geometric_error
        if self.refine is not None:
            result["refine"] = self.refine
        if self.content_uri is not None:
            result["content"] = {"uri": self.content_uri}
        if self.children:
            result["children"] = [child.to_dict() for child in self.children]
        return result

    def walk(self) -> list[Tile]:
        """This tile and all its descendants, depth first."""
        tiles = [self]
        for child in self.children:
            tiles.extend(child.walk())
        return tiles


@dataclass
class Tileset:
    """A whole tileset; ``extras`` lands in ``asset.extras``."""

    root: Tile
    geometric_error: float
    generator: str
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        asset: dict[str, Any] = {"version": "1.1", "generator": self.generator}
        if self.extras:
            asset["extras"] = self.extras
        return {
            "asset": asset,
            "geometricError": self.geometric_error,
            "root": self.root.to_dict(),
        }


def in_frame(document: dict[str, Any], matrix: NDArray[np.floating[Any]]) -> dict[str, Any]:
    """A copy of a tileset JSON ``document`` whose root ``transform`` is ``matrix`` applied
    after its own (both 4x4, acting on column vectors; 3D Tiles writes transforms column-major),
    for example a Helmert transformation from ETRS89 to ITRF2020: every tile, content and
    child tileset moves with the root, and no content changes. A root without a transform is
    taken to have the identity."""
    root = document.get("root")
    if not isinstance(root, dict):
        raise ValueError("a tileset document has a root tile")
    own = root.get("transform")
    current = np.eye(4)
    if own is not None:
        values = np.asarray(own, dtype=np.float64)
        if values.shape != (16,) or not np.isfinite(values).all():
            raise ValueError("a tile transform is 16 finite numbers")
        current = values.reshape(4, 4).T  # column-major
    combined = np.asarray(matrix, dtype=np.float64) @ current
    return {**document, "root": {**root, "transform": [float(v) for v in combined.T.ravel()]}}
