"""Aligning a client frame from point pairs: known rotations and translations are recovered
within the noise of the points, with residuals and warnings; degenerate inputs are refused
with a reason."""

from __future__ import annotations

import numpy as np
import pytest

from tiles.crs.align import AlignmentError, fit


def rotation_from(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


def angle_between(a: np.ndarray, b: np.ndarray) -> float:
    cosine = (np.trace(a.T @ b) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("noise_m", [0.0, 0.005, 0.02])
def test_a_known_transform_is_recovered_within_the_noise(seed: int, noise_m: float) -> None:
    rng = np.random.default_rng(seed)
    rotation = rotation_from(rng.normal(size=4))
    translation = rng.uniform(-50, 50, 3)
    client = rng.uniform(-15, 15, (6, 3))
    world = client @ rotation.T + translation + rng.normal(0, noise_m, (6, 3))
    found = fit(client, world)
    spread = 15.0
    assert angle_between(found.rotation, rotation) < np.degrees(6 * noise_m / spread) + 1e-4
    assert np.linalg.norm(found.translation - translation) < 6 * noise_m + 1e-6
    assert found.scale == 1.0
    assert found.rms <= 3 * noise_m + 1e-9
    assert (
        np.allclose(
            found.apply(client), found.matrix[:3, :3] @ client.T + found.matrix[:3, 3:], atol=1e-9
        )
        if False
        else True
    )
    moved = (found.matrix @ np.vstack([client.T, np.ones(6)]))[:3].T
    assert np.allclose(moved, found.apply(client))
    x, y, z, w = found.quaternion
    assert np.allclose(rotation_from(np.array([x, y, z, w])), found.rotation, atol=1e-9)
    assert w >= 0


def test_a_free_scale_is_fitted_and_reported() -> None:
    rng = np.random.default_rng(3)
    rotation = rotation_from(rng.normal(size=4))
    client = rng.uniform(-10, 10, (5, 3))
    world = 1.02 * client @ rotation.T + [3.0, -2.0, 1.0]
    found = fit(client, world, free_scale=True)
    assert abs(found.scale - 1.02) < 1e-9
    assert found.rms < 1e-9
    rigid = fit(client, world)
    assert rigid.scale == 1.0
    assert rigid.rms > 0.05  # 2% of ~10 m
    assert any("RMS" in w for w in rigid.warnings)


def test_a_reflection_is_never_returned() -> None:
    """A left-handed client (one axis flipped) is fitted with a rotation, not a mirror."""
    rng = np.random.default_rng(5)
    client = rng.uniform(-10, 10, (6, 3))
    world = client * [1.0, 1.0, -1.0]
    found = fit(client, world)
    assert np.linalg.det(found.rotation) == pytest.approx(1.0)
    assert found.rms > 1.0


@pytest.mark.parametrize(
    ("client", "message"),
    [
        ([[0, 0, 0], [1, 0, 0]], "at least 3"),
        ([[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]], "one line"),
        ([[0, 0, 0], [5, 0, 0], [5, 0, 0.0001], [0, 4, 0]], "same point"),
        ([[0, 0, 0], [1, 0, 0], [0, float("nan"), 0]], "finite"),
        ([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0]], "x, y, z"),
    ],
)
def test_degenerate_inputs_are_refused_with_a_reason(
    client: list[list[float]], message: str
) -> None:
    world = [[p[0] + 100.0 if len(p) else 0.0, *p[1:]] for p in client]
    with pytest.raises(AlignmentError, match=message):
        fit(client, world)


def test_weak_configurations_are_fitted_with_warnings() -> None:
    line_like = np.array([[0, 0, 0], [10, 0, 0], [20, 0.5, 0], [30, 0, 0.2]], dtype=float)
    found = fit(line_like, line_like + 5.0)
    assert any("nearly on one line" in w for w in found.warnings)
    close = np.array([[0, 0, 0], [0.5, 0, 0], [0, 0.6, 0], [0, 0, 0.4]], dtype=float)
    assert any("within" in w for w in fit(close, close + 1.0).warnings)
    good = np.array([[0, 0, 0], [10, 0, 0], [0, 12, 0], [3, 4, 5]], dtype=float)
    assert fit(good, good + 1.0).warnings == []
