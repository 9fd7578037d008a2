"""RDNAPTRANS(TM)2018 conformance on the official NSGI validation set, with the certification
tolerances: RD x, y and NAP H within 0.001 m; latitude and longitude within 1e-8 degrees;
ellipsoidal height within 0.001 m, on every point, in both directions."""

from __future__ import annotations

import numpy as np
import pytest

from tiles.crs import Transformer, geodetic_to_ecef

METRE_TOLERANCE = 0.001
DEGREE_TOLERANCE = 1e-8


def worst(actual: np.ndarray, expected: np.ndarray) -> tuple[float, int]:
    error = np.abs(actual - expected)
    return float(error.max()), int(error.argmax())


def test_etrs89_to_rd_nap_meets_certification_on_every_point(nsgi_inside: np.ndarray) -> None:
    d = nsgi_inside
    x, y, nap = Transformer.from_crs("EPSG:4937", "EPSG:7415").transform(
        d["etrs89_lon"], d["etrs89_lat"], d["etrs89_h"]
    )
    assert nap is not None
    for name, actual, expected in (
        ("x", x, d["rd_x"]),
        ("y", y, d["rd_y"]),
        ("H", nap, d["nap_h"]),
    ):
        error, at = worst(actual, expected)
        assert error <= METRE_TOLERANCE, f"{name} off by {error} m at point {d['point_id'][at]}"


def test_rd_nap_to_etrs89_meets_certification_on_every_point(nsgi_inside: np.ndarray) -> None:
    d = nsgi_inside
    lon, lat, h = Transformer.from_crs("EPSG:7415", "EPSG:4937").transform(
        d["rd_x"], d["rd_y"], d["nap_h"]
    )
    assert h is not None
    for name, actual, expected, tolerance in (
        ("lat", lat, d["etrs89_lat"], DEGREE_TOLERANCE),
        ("lon", lon, d["etrs89_lon"], DEGREE_TOLERANCE),
        ("h", h, d["etrs89_h"], METRE_TOLERANCE),
    ):
        error, at = worst(actual, expected)
        assert error <= tolerance, f"{name} off by {error} at point {d['point_id'][at]}"


def test_rd_nap_to_ecef_lands_within_a_millimetre_of_the_official_position(
    nsgi_inside: np.ndarray,
) -> None:
    d = nsgi_inside
    x, y, z = Transformer.from_crs("EPSG:7415", "EPSG:4978").transform(
        d["rd_x"], d["rd_y"], d["nap_h"]
    )
    assert z is not None
    ox, oy, oz = geodetic_to_ecef(d["etrs89_lon"], d["etrs89_lat"], d["etrs89_h"])
    distance = np.sqrt((x - ox) ** 2 + (y - oy) ** 2 + (z - oz) ** 2)
    assert distance.max() <= METRE_TOLERANCE


def test_fused_ecef_path_equals_geographic_then_geocentric(nsgi_inside: np.ndarray) -> None:
    d = nsgi_inside
    fused = Transformer.from_crs("EPSG:7415", "EPSG:4936").transform(
        d["rd_x"], d["rd_y"], d["nap_h"]
    )
    lon, lat, h = Transformer.from_crs("EPSG:7415", "EPSG:4937").transform(
        d["rd_x"], d["rd_y"], d["nap_h"]
    )
    assert h is not None
    assert fused[2] is not None
    stepwise = geodetic_to_ecef(lon, lat, h)
    for a, b in zip(fused, stepwise, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_rd_without_height_gives_the_same_horizontal_position(nsgi_inside: np.ndarray) -> None:
    d = nsgi_inside
    lon2, lat2, none = Transformer.from_crs("EPSG:28992", "EPSG:4258").transform(
        d["rd_x"], d["rd_y"]
    )
    lon3, lat3, _ = Transformer.from_crs("EPSG:7415", "EPSG:4937").transform(
        d["rd_x"], d["rd_y"], d["nap_h"]
    )
    assert none is None
    np.testing.assert_array_equal(lon2, lon3)
    np.testing.assert_array_equal(lat2, lat3)


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_matches_the_certified_reference_implementation_on_random_points(direction: str) -> None:
    pyrdnap = pytest.importorskip("pyrdnap")
    reference = pyrdnap.RDNAP2018v1()
    rng = np.random.default_rng(2018)
    n = 300
    if direction == "forward":
        lat = rng.uniform(50.7, 53.6, n)
        lon = rng.uniform(3.3, 7.3, n)
        h = rng.uniform(-10.0, 300.0, n)
        x, y, nap = Transformer.from_crs("EPSG:4937", "EPSG:7415").transform(lon, lat, h)
        expected = np.array(
            [tuple(reference.forward(*p)[:3]) for p in zip(lat, lon, h, strict=True)]
        )
        actual = np.column_stack([x, y, nap])
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4)
    else:
        rx = rng.uniform(10_000.0, 280_000.0, n)
        ry = rng.uniform(300_000.0, 620_000.0, n)
        nap = rng.uniform(-10.0, 300.0, n)
        lon, lat, h = Transformer.from_crs("EPSG:7415", "EPSG:4937").transform(rx, ry, nap)
        expected = np.array(
            [tuple(reference.reverse(*p)[3:6]) for p in zip(rx, ry, nap, strict=True)]
        )
        np.testing.assert_allclose(np.column_stack([lat, lon]), expected[:, :2], rtol=0, atol=1e-9)
        np.testing.assert_allclose(h, expected[:, 2], rtol=0, atol=1e-4)
