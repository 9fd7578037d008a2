"""Triangle meshes for GIS features, built in ENU metres (z up): prisms and tubes (which also
make poles).

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


def prisms(solids: list[tuple[list[FloatArray], list[FloatArray], IndexArray]]) -> list[Mesh]:
    """Solids between matching base and top rings, built for all of them at once: each item is
    (base rings, top rings, cap triangles), the rings ENU (k, 3) each, exterior first, then
    holes, with the cap triangles of :func:`triangulate_rings`. Rings must be oriented as
    GeoJSON says: exterior counter-clockwise, holes clockwise (``shapely.geometry.polygon.orient``
    makes them so); the walls then face outwards. One mesh per solid, in order: its top, its
    bottom and its walls, each with its own vertices so that they shade flat."""
    rings = [ring for base_rings, _, _ in solids for ring in base_rings]
    base = np.concatenate(rings)
    top = np.concatenate([ring for _, top_rings, _ in solids for ring in top_rings])
    total = base.shape[0]
    ring_sizes = np.array([len(r) for r in rings])
    ring_start = np.repeat(np.cumsum(ring_sizes) - ring_sizes, ring_sizes)
    following = ring_start + (np.arange(total) - ring_start + 1) % np.repeat(ring_sizes, ring_sizes)
    quads = np.stack([base, base[following], top[following], top], axis=1)  # (total, 4, 3)
    edge = quads[:, 1] - quads[:, 0]
    outward = np.column_stack([edge[:, 1], -edge[:, 0], np.zeros(total)])  # right of the edge

    # Per solid: vertices [top (n), bottom (n), walls (4 n)], faces [cap, bottom cap, walls].
    sizes = np.array([sum(len(r) for r in base_rings) for base_rings, _, _ in solids])
    caps = [cap for _, _, cap in solids]
    cap_sizes = np.array([len(c) for c in caps])
    solid_of = np.repeat(np.arange(len(solids)), sizes)
    local = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    v_start = np.concatenate([[0], np.cumsum(6 * sizes)])
    f_start = np.concatenate([[0], np.cumsum(2 * cap_sizes + 2 * sizes)])
    n_of = sizes[solid_of]
    top_slot = v_start[solid_of] + local
    bottom_slot = top_slot + n_of
    wall_slot = v_start[solid_of] + 2 * n_of + 4 * local
    vertices = np.empty((int(v_start[-1]), 3))
    normals = np.empty_like(vertices)
    vertices[top_slot] = top
    vertices[bottom_slot] = base
    normals[top_slot] = (0.0, 0.0, 1.0)
    normals[bottom_slot] = (0.0, 0.0, -1.0)
    corners = wall_slot[:, None] + np.arange(4)[None, :]
    vertices[corners] = quads
    normals[corners] = outward[:, None, :]

    faces = np.empty((int(f_start[-1]), 3), dtype=np.int64)
    all_caps = np.concatenate(caps)
    cap_owner = np.repeat(np.arange(len(solids)), cap_sizes)
    cap_local = np.arange(len(all_caps)) - np.repeat(np.cumsum(cap_sizes) - cap_sizes, cap_sizes)
    faces[f_start[cap_owner] + cap_local] = all_caps + v_start[cap_owner][:, None]
    faces[f_start[cap_owner] + cap_sizes[cap_owner] + cap_local] = (
        all_caps[:, ::-1] + (v_start[cap_owner] + sizes[cap_owner])[:, None]
    )
    wall_face = f_start[solid_of] + 2 * cap_sizes[solid_of] + local
    faces[wall_face] = wall_slot[:, None] + [0, 1, 2]
    faces[wall_face + n_of] = wall_slot[:, None] + [0, 2, 3]
    return [
        (
            vertices[v_start[k] : v_start[k + 1]],
            faces[f_start[k] : f_start[k + 1]] - v_start[k],
            normals[v_start[k] : v_start[k + 1]],
        )
        for k in range(len(solids))
    ]


class DegenerateLineError(TilesError):
    """A polyline with fewer than two distinct points; ``index`` says which one."""

    def __init__(self, index: int) -> None:
        super().__init__("a line needs at least two distinct points")
        self.index = index


def tubes(lines: list[FloatArray], radii: FloatArray, sides: int = 8) -> list[Mesh]:
    """Tubes of ``radii`` metres along polylines (each (k, 3)), closed at both ends: one mesh
    per line, in order, built for all lines at once. Raises :class:`DegenerateLineError` for
    the first line with fewer than two distinct points."""
    kept = [_drop_repeats(np.asarray(line, dtype=np.float64)) for line in lines]
    counts = np.array([len(k) for k in kept], dtype=np.int64)
    short = np.flatnonzero(counts < 2)
    if short.size:
        raise DegenerateLineError(int(short[0]))
    points = np.concatenate(kept)
    n_lines = len(kept)
    line_of = np.repeat(np.arange(n_lines), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    last = first + counts - 1
    is_first = np.zeros(len(points), dtype=bool)
    is_first[first] = True
    is_last = np.zeros(len(points), dtype=bool)
    is_last[last] = True
    # Direction of the segment leaving each point (undefined at a line's last point).
    forward = np.zeros_like(points)
    forward[:-1] = points[1:] - points[:-1]
    forward /= np.maximum(np.linalg.norm(forward, axis=1), 1e-12)[:, None]
    backward = np.zeros_like(points)
    backward[1:] = forward[:-1]
    tangents = np.where(
        is_first[:, None], forward, np.where(is_last[:, None], backward, forward + backward)
    )
    tangents /= np.maximum(np.linalg.norm(tangents, axis=1), 1e-12)[:, None]
    reference = np.where(np.abs(tangents[:, 2:3]) > 0.9, [[1.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]])
    side = _cross(tangents, reference)
    side /= np.linalg.norm(side, axis=1)[:, None]
    up = _cross(side, tangents)
    angles = np.linspace(0.0, 2.0 * np.pi, sides, endpoint=False)
    ring = (
        np.cos(angles)[None, :, None] * side[:, None, :]
        + np.sin(angles)[None, :, None] * up[:, None, :]
    )
    radius_of = np.asarray(radii, dtype=np.float64)[line_of]
    shell = points[:, None, :] + radius_of[:, None, None] * ring  # (N, sides, 3)

    # Layout per line: its shell rings, then the start cap (centre + rim), then the end cap.
    cap = sides + 1
    vertex_counts = counts * sides + 2 * cap
    vertex_start = np.concatenate([[0], np.cumsum(vertex_counts)])
    face_counts = (counts - 1) * sides * 2 + 2 * sides
    face_start = np.concatenate([[0], np.cumsum(face_counts)])
    vertices = np.empty((int(vertex_start[-1]), 3))
    normals = np.empty_like(vertices)
    ring_start = vertex_start[line_of] + (np.arange(len(points)) - first[line_of]) * sides
    slots = ring_start[:, None] + np.arange(sides)[None, :]
    vertices[slots] = shell
    normals[slots] = ring
    for cap_index, ends, facing in ((0, first, -tangents[first]), (1, last, tangents[last])):
        centre_slot = vertex_start[:-1] + counts * sides + cap_index * cap
        vertices[centre_slot] = points[ends]
        normals[centre_slot] = facing
        rim_slots = centre_slot[:, None] + 1 + np.arange(sides)[None, :]
        vertices[rim_slots] = shell[ends]
        normals[rim_slots] = facing[:, None, :]
    faces = np.empty((int(face_start[-1]), 3), dtype=np.int64)
    # Shell: two triangles per side between the rings of consecutive points of a line.
    segment = ~is_last
    a_ring = ring_start[segment]
    j = np.arange(sides)[None, :]
    a = a_ring[:, None] + j
    b = a_ring[:, None] + (j + 1) % sides
    # The ring runs clockwise about the tangent (side x up = -tangent): these face outwards.
    shell_faces = np.stack(
        [np.stack([a, b + sides, b], axis=-1), np.stack([a, a + sides, b + sides], axis=-1)], axis=1
    )  # (segments, 2, sides, 3)
    seg_line = line_of[segment]
    seg_index = np.arange(len(points))[segment] - first[seg_line]
    shell_slots = (
        face_start[seg_line][:, None, None]
        + seg_index[:, None, None] * sides * 2
        + (np.arange(2)[None, :, None] * sides + np.arange(sides)[None, None, :])
    )
    faces[shell_slots.reshape(-1)] = shell_faces.reshape(-1, 3)
    # Caps: fans around each centre; the start cap faces backwards, the end cap forwards.
    for cap_index in (0, 1):
        centre_slot = vertex_start[:-1] + counts * sides + cap_index * cap
        rim = centre_slot[:, None] + 1 + j
        rim_next = centre_slot[:, None] + 1 + (j + 1) % sides
        centre = np.broadcast_to(centre_slot[:, None], rim.shape)
        # The rim runs counter-clockwise about -tangent, the way the start cap faces.
        fan = np.stack(
            [centre, rim, rim_next] if cap_index == 0 else [centre, rim_next, rim], axis=-1
        )
        slots_f = face_start[:-1, None] + (counts - 1)[:, None] * sides * 2 + cap_index * sides + j
        faces[slots_f.reshape(-1)] = fan.reshape(-1, 3)
    return [
        (
            vertices[vertex_start[k] : vertex_start[k + 1]],
            faces[face_start[k] : face_start[k + 1]] - vertex_start[k],
            normals[vertex_start[k] : vertex_start[k + 1]],
        )
        for k in range(n_lines)
    ]


def _cross(a: FloatArray, b: FloatArray) -> FloatArray:
    """Row-wise cross product of (n, 3) arrays (np.cross is slow on many small calls)."""
    return np.column_stack(
        [
            a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1],
            a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
            a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0],
        ]
    )


def _drop_repeats(points: FloatArray) -> FloatArray:
    keep = np.ones(points.shape[0], dtype=bool)
    keep[1:] = np.linalg.norm(np.diff(points, axis=0), axis=1) > 1e-6
    kept: FloatArray = points[keep]
    return kept
