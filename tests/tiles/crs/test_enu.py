"""Local East-North-Up frames."""

from __future__ import annotations

import numpy as np
import pytest

from tiles.crs import EnuFrame, ecef_to_geodetic, geodetic_to_ecef
from tiles.errors import InvalidCoordinatesError

SCHIPHOL = EnuFrame(4.7640, 52.3086, 43.0)


def test_origin_maps_to_zero() -> None:
    e, n, u = SCHIPHOL.from_geodetic(SCHIPHOL.lon, SCHIPHOL.lat, SCHIPHOL.h)
    assert np.allclose([e, n, u], 0.0, atol=1e-6)


def test_axes_point_east_north_and_up() -> None:
    e, n, u = SCHIPHOL.from_geodetic(
        [SCHIPHOL.lon + 0.001, SCHIPHOL.lon, SCHIPHOL.lon],
        [SCHIPHOL.lat, SCHIPHOL.lat + 0.001, SCHIPHOL.lat],
        [SCHIPHOL.h, SCHIPHOL.h, SCHIPHOL.h + 10.0],
    )
    assert e[0] == pytest.approx(68.1, abs=0.2)
    assert abs(n[0]) < 0.01
    assert n[1] == pytest.approx(111.3, abs=0.2)
    assert abs(e[1]) < 1e-6
    assert u[2] == pytest.approx(10.0, abs=1e-6)


def test_round_trip_is_exact_to_a_micrometre() -> None:
    rng = np.random.default_rng(5)
    enu = rng.uniform(-5_000.0, 5_000.0, (3, 1_000))
    back = SCHIPHOL.from_ecef(*SCHIPHOL.to_ecef(*enu))
    np.testing.assert_allclose(np.stack(back), enu, rtol=0, atol=1e-6)
    lon, lat, h = SCHIPHOL.to_geodetic(*enu)
    np.testing.assert_allclose(np.stack(SCHIPHOL.from_geodetic(lon, lat, h)), enu, atol=1e-6)


def test_tileset_transform_is_column_major_enu_to_ecef() -> None:
    m = np.array(SCHIPHOL.tileset_transform()).reshape(4, 4).T  # back to row-major
    point = np.array([12.0, -7.0, 3.5, 1.0])
    expected = SCHIPHOL.to_ecef(point[0], point[1], point[2])
    np.testing.assert_allclose((m @ point)[:3], np.array(expected).ravel(), atol=1e-6)
    assert m[3].tolist() == [0.0, 0.0, 0.0, 1.0]


def test_geodetic_ecef_round_trip_including_the_poles() -> None:
    lon = np.array([0.0, 4.9, -120.0, 0.0, 10.0])
    lat = np.array([0.0, 52.37, -33.9, 90.0, -90.0])
    h = np.array([0.0, 43.0, -100.0, 2_000.0, 10.0])
    lon2, lat2, h2 = ecef_to_geodetic(*geodetic_to_ecef(lon, lat, h))
    np.testing.assert_allclose(lat2, lat, atol=1e-12)
    np.testing.assert_allclose(h2, h, atol=1e-6)
    np.testing.assert_allclose(lon2[:3], lon[:3], atol=1e-12)


@pytest.mark.parametrize("origin", [(float("nan"), 52.0, 0.0), (5.0, 95.0, 0.0)])
def test_invalid_origins_are_refused(origin: tuple[float, float, float]) -> None:
    with pytest.raises(InvalidCoordinatesError):
        EnuFrame(*origin)
