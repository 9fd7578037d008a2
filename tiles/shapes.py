"""Triangle meshes for GIS features, built in ENU metres (z up): prisms, tubes and poles.

Every function returns ``(vertices (n, 3), faces (m, 3), normals (n, 3))``, new arrays, with
faces wound counter-clockwise seen from outside. Walls and caps get their own vertices so that
they shade flat; tubes and poles shade smooth around.
"""

from __future__ import annotations

import mapbox_earcut
import numpy as np
from numpy.typing import NDArray

from tiles.errors import TilesError

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.int64]
Mesh = tuple[FloatArray, IndexArray, FloatArray]


def triangulate_rings(rings_2d: list[FloatArray]) -> IndexArray:
    """Earcut triangles (m, 3) of a polygon given as exterior + hole rings (k, 2), without the
    closing vertex; indices refer to the rings' vertices concatenated. Counter-clockwise."""
    vertices = np.concatenate(rings_2d)
    ends = np.cumsum([len(r) for r in rings_2d]).astype(np.uint32)
    flat = mapbox_earcut.triangulate_float64(vertices, ends)
    triangles = np.asarray(flat, dtype=np.int64).reshape(-1, 3)
    if triangles.size == 0:
        raise TilesError("polygon could not be triangulated (zero area?)")
    a, b, c = (vertices[triangles[:, k]] for k in range(3))
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    clockwise = area < 0
    triangles[clockwise] = triangles[clockwise][:, ::-1]
    return triangles


def prism(base_rings: list[FloatArray], top_rings: list[FloatArray], cap: IndexArray) -> Mesh:
    """A solid between matching base and top rings (ENU (k, 3) each, exterior first, then
    holes), with the cap triangles of :func:`triangulate_rings`. Rings must be oriented as
    GeoJSON says: exterior counter-clockwise, holes clockwise (``shapely.geometry.polygon.orient``
    makes them so); the walls then face outwards."""
    base = np.concatenate(base_rings)
    top = np.concatenate(top_rings)
    n = base.shape[0]
    vertices = [top, base]
    faces = [cap, cap[:, ::-1] + n]
    normals = [np.tile([0.0, 0.0, 1.0], (n, 1)), np.tile([0.0, 0.0, -1.0], (n, 1))]
    offset = 2 * n
    for b, t in zip(base_rings, top_rings, strict=True):
        k = b.shape[0]
        nxt = (np.arange(k) + 1) % k
        quads = np.stack([b, b[nxt], t[nxt], t], axis=1)  # (k, 4, 3)
        index = offset + np.arange(k)[:, None] * 4
        faces.append(np.concatenate([index + [0, 1, 2], index + [0, 2, 3]]))
        outward = np.cross(quads[:, 1] - quads[:, 0], [0.0, 0.0, 1.0])  # right of the edge
        normals.append(np.repeat(outward, 4, axis=0))
        vertices.append(quads.reshape(-1, 3))
        offset += 4 * k
    return np.concatenate(vertices), np.concatenate(faces), np.concatenate(normals)


def tube(centre: FloatArray, radius: float, sides: int = 8) -> Mesh:
    """A tube of ``radius`` metres along a polyline ``centre`` (k, 3), closed at both ends."""
    points = _drop_repeats(centre)
    if points.shape[0] < 2:
        raise TilesError("a line needs at least two distinct points")
    segments = np.diff(points, axis=0)
    segments /= np.linalg.norm(segments, axis=1)[:, None]
    tangents = np.vstack([segments[:1], segments[:-1] + segments[1:], segments[-1:]])
    tangents /= np.maximum(np.linalg.norm(tangents, axis=1), 1e-12)[:, None]
    reference = np.where(
        np.abs(tangents[:, 2:3]) > 0.9, np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 0.0, 1.0]])
    )
    side = np.cross(tangents, reference)
    side /= np.linalg.norm(side, axis=1)[:, None]
    up = np.cross(side, tangents)
    angles = np.linspace(0.0, 2.0 * np.pi, sides, endpoint=False)
    ring = (
        np.cos(angles)[None, :, None] * side[:, None, :]
        + np.sin(angles)[None, :, None] * up[:, None, :]
    )
    k = points.shape[0]
    shell = (points[:, None, :] + radius * ring).reshape(-1, 3)
    shell_normals = ring.reshape(-1, 3)
    i = np.arange(k - 1)[:, None] * sides
    j = np.arange(sides)[None, :]
    a = (i + j).ravel()
    b = (i + (j + 1) % sides).ravel()
    faces = np.concatenate(
        [np.column_stack([a, b, b + sides]), np.column_stack([a, b + sides, a + sides])]
    )
    start_cap, start_faces = _disc(points[0], ring[0] * radius, -tangents[0], shell.shape[0])
    end_cap, end_faces = _disc(
        points[-1], ring[-1] * radius, tangents[-1], shell.shape[0] + sides + 1
    )
    vertices = np.concatenate([shell, start_cap, end_cap])
    normals = np.concatenate(
        [
            shell_normals,
            np.tile(-tangents[0], (sides + 1, 1)),
            np.tile(tangents[-1], (sides + 1, 1)),
        ]
    )
    return vertices, np.concatenate([faces, start_faces, end_faces]).astype(np.int64), normals


def _disc(
    centre: FloatArray, rim: FloatArray, facing: FloatArray, offset: int
) -> tuple[FloatArray, IndexArray]:
    sides = rim.shape[0]
    vertices = np.vstack([centre[None, :], centre + rim])
    j = np.arange(sides)
    faces = np.column_stack([np.zeros(sides, dtype=np.int64), 1 + j, 1 + (j + 1) % sides])
    normal = np.cross(rim[1] - rim[0], rim[2] - rim[0])
    if np.dot(normal, facing) < 0:
        faces = faces[:, ::-1]
    return vertices, faces + offset


def pole(base: FloatArray, height: float, radius: float, sides: int = 12) -> Mesh:
    """An upright cylinder standing on ``base`` (3,), ``height`` metres tall."""
    return tube(np.array([base, base + [0.0, 0.0, height]]), radius, sides)


def _drop_repeats(points: FloatArray) -> FloatArray:
    keep = np.ones(points.shape[0], dtype=bool)
    keep[1:] = np.linalg.norm(np.diff(points, axis=0), axis=1) > 1e-6
    kept: FloatArray = points[keep]
    return kept
