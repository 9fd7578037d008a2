"""Meshes for GIS features: closed, outward-facing, one mesh per input, built in batches."""

from __future__ import annotations

import numpy as np
import pytest

from tiles.shapes import DegenerateLineError, prisms, triangulate_rings, tubes


def outward_agreement(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray) -> float:
    """Share of faces whose winding agrees with their vertex normals."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    face_normal = np.cross(b - a, c - a)
    vertex_normal = normals[faces].sum(axis=1)
    return float((np.einsum("ij,ij->i", face_normal, vertex_normal) > 0).mean())


def enclosed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def square_with_hole() -> tuple[list[np.ndarray], np.ndarray]:
    outer = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])  # counter-clockwise
    hole = np.array([[4.0, 4.0], [4.0, 6.0], [6.0, 6.0], [6.0, 4.0]])  # clockwise
    return [outer, hole], triangulate_rings([outer, hole])


def test_prisms_are_closed_outward_solids_with_the_right_volume() -> None:
    rings, cap = square_with_hole()
    solid = (
        [np.column_stack([r, np.zeros(4)]) for r in rings],
        [np.column_stack([r, np.full(4, 3.0)]) for r in rings],
        cap,
    )
    plain = triangulate_rings([rings[0]])
    block = (
        [np.column_stack([rings[0], np.zeros(4)])],
        [np.column_stack([rings[0], np.full(4, 2.0)])],
        plain,
    )
    (holed, full) = prisms([solid, block])
    assert outward_agreement(*holed) == 1.0
    assert outward_agreement(*full) == 1.0
    assert enclosed_volume(holed[0], holed[1]) == pytest.approx((100.0 - 4.0) * 3.0)
    assert enclosed_volume(full[0], full[1]) == pytest.approx(200.0)


def test_tubes_are_closed_outward_with_their_radius() -> None:
    lines = [
        np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [10.0, 10.0, 1.0]]),
        np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 5.0]]),
    ]
    meshes = tubes(lines, np.array([0.5, 0.2]), sides=16)
    assert len(meshes) == 2
    for vertices, faces, normals in meshes:
        assert outward_agreement(vertices, faces, normals) == 1.0
        assert enclosed_volume(vertices, faces) > 0
    pole_vertices, pole_faces, _ = meshes[1]
    area_16gon = 0.5 * 16 * 0.2**2 * np.sin(2 * np.pi / 16)
    assert enclosed_volume(pole_vertices, pole_faces) == pytest.approx(area_16gon * 5.0)


def test_a_line_without_two_distinct_points_is_named() -> None:
    lines = [
        np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]),
        np.array([[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]),
    ]
    with pytest.raises(DegenerateLineError) as caught:
        tubes(lines, np.array([0.1, 0.1]))
    assert caught.value.index == 1
