"""What readers hand to the tiler: triangle meshes of features, or points, in ENU metres."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiles.gltf import Material

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.int64]


@dataclass
class MeshPart:
    """Triangles of one feature in one material.

    ``vertices`` (n, 3) are ENU metres (z up); ``faces`` (m, 3) index them; ``normals`` (n, 3),
    ``uvs`` (n, 2, glTF convention: v down) and ``colors`` (n, 3 or 4, uint8 sRGB) are optional;
    ``feature`` indexes :attr:`FeatureModel.properties`.
    """

    vertices: FloatArray
    faces: IndexArray
    feature: int
    material: Material = field(default_factory=Material)
    normals: FloatArray | None = None
    uvs: FloatArray | None = None
    colors: NDArray[np.uint8] | None = None

    @property
    def triangle_count(self) -> int:
        return int(self.faces.shape[0])


@dataclass
class FeatureModel:
    """Features (buildings, cables, a lamp post...) as mesh parts, with one property dict each."""

    parts: list[MeshPart]
    properties: list[dict[str, Any]]

    @property
    def triangle_count(self) -> int:
        return sum(p.triangle_count for p in self.parts)


def face_normals_to_vertices(vertices: FloatArray, faces: IndexArray) -> FloatArray:
    """Area-weighted vertex normals of a triangle mesh (unit length; (0, 0, 1) where undefined)."""
    v = vertices[faces]
    cross = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    n = vertices.shape[0]
    index = faces.reshape(-1)
    normals: FloatArray = np.column_stack(
        [np.bincount(index, weights=np.repeat(cross[:, axis], 3), minlength=n) for axis in range(3)]
    ).astype(np.float64)
    length = np.linalg.norm(normals, axis=1)
    bad = length < 1e-12
    normals[~bad] /= length[~bad, None]
    normals[bad] = (0.0, 0.0, 1.0)
    return normals
