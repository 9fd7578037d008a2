"""Frames at an epoch: ETRS89 (ETRF2000), ITRF2014, ITRF2020 and WGS 84 (G2296), related by
the published time-dependent Helmert transformations, agree with PROJ's own operations between
these frames within 1 mm over the Netherlands at epochs 2000-2030; round trips within 0.1 mm;
an ITRF position without an epoch is refused."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from tiles.crs import Transformer
from tiles.crs.datums import helmert
from tiles.crs.ellipsoid import geodetic_to_ecef
from tiles.errors import CrsError

EPOCHS = (2000.0, 2010.0, 2015.0, 2026.9, 2030.0)
GEOD = pyproj.Geod(ellps="GRS80")


def netherlands(n: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.uniform(3.3, 7.2, n), rng.uniform(50.75, 53.55, n), rng.uniform(-20.0, 300.0, n)


def proj(source: int, target: int, x: np.ndarray, y: np.ndarray, z: np.ndarray, epoch: float):
    """PROJ's best operation, with the epoch as the fourth coordinate."""
    tr = pyproj.Transformer.from_crs(source, target, always_xy=True)
    return tr.transform(x, y, z, np.full(x.size, epoch))[:3]


@pytest.mark.parametrize("epoch", EPOCHS)
@pytest.mark.parametrize(
    ("source", "target"),
    [(7931, 9989), (9989, 7931), (7931, 7912), (7912, 7931), (9989, 7912), (7912, 9989),
     (10605, 7931)],
)  # fmt: skip
def test_geographic_frames_agree_with_proj(source: int, target: int, epoch: float) -> None:
    lon, lat, h = netherlands()
    ours = Transformer.from_crs(f"EPSG:{source}", f"EPSG:{target}", epoch=epoch)
    ox, oy, oz = ours.transform(lon, lat, h)
    px, py, pz = proj(source, target, lon, lat, h, epoch)
    _, _, horizontal = GEOD.inv(ox, oy, px, py)
    assert np.abs(horizontal).max() < 0.001
    assert oz is not None
    assert np.abs(oz - pz).max() < 0.001
    back = Transformer.from_crs(f"EPSG:{target}", f"EPSG:{source}", epoch=epoch)
    bx, by, bz = back.transform(ox, oy, oz)
    _, _, again = GEOD.inv(bx, by, lon, lat)
    assert np.abs(again).max() < 0.0001
    assert bz is not None
    assert np.abs(bz - h).max() < 0.0001


@pytest.mark.parametrize("epoch", EPOCHS)
def test_geocentric_helmert_matrices_agree_with_proj(epoch: float) -> None:
    x, y, z = geodetic_to_ecef(*netherlands())
    for ours, source, target in (("ITRF2020", 9988, 7930), ("ITRF2014", 7789, 7930)):
        moved = helmert(ours, "ETRS89", epoch).apply(x, y, z)
        expected = proj(source, target, x, y, z, epoch)
        assert max(np.abs(a - b).max() for a, b in zip(moved, expected, strict=True)) < 0.001


def test_matrices_compose_and_invert() -> None:
    x, y, z = geodetic_to_ecef(*netherlands(50))
    via = (
        helmert("ITRF2014", "ETRS89", 2026.9).matrix
        @ helmert("ITRF2020", "ITRF2014", 2026.9).matrix
    )
    direct = helmert("ITRF2020", "ETRS89", 2026.9)
    ones = np.ones_like(x)
    difference = (via - direct.matrix) @ np.vstack([x, y, z, ones])
    assert np.abs(difference).max() < 0.0005  # the two published paths differ by < 0.5 mm
    there = direct.apply(x, y, z)
    back = direct.inverse().apply(*there)
    assert max(np.abs(a - b).max() for a, b in zip(back, (x, y, z), strict=True)) < 1e-7


def test_itrf2020_is_about_93_cm_north_east_of_etrs89_at_amersfoort_in_2026() -> None:
    to_itrf = Transformer.from_crs("EPSG:7931", "EPSG:9989", epoch=2026.9)
    lon, lat, _ = to_itrf.transform([5.387], [52.155], [43.0])
    azimuth, _, metres = GEOD.inv(5.387, 52.155, float(lon[0]), float(lat[0]))
    assert 0.92 < metres < 0.94
    assert 35 < azimuth < 55  # the plate drifts north-east in ITRF
    later = Transformer.from_crs("EPSG:7931", "EPSG:9989", epoch=2027.9).transform(
        [5.387], [52.155], [43.0]
    )
    _, _, yearly = GEOD.inv(float(lon[0]), float(lat[0]), float(later[0][0]), float(later[1][0]))
    assert 0.02 < yearly < 0.03  # about 2.4 cm a year


def test_rd_nap_reaches_itrf_through_rdnaptrans_and_the_helmert_leg() -> None:
    direct = Transformer.from_crs("EPSG:7415", "EPSG:9989", epoch=2026.9)
    steps = direct.operation.steps
    assert steps[0].startswith("RDNAPTRANS")
    assert "EPSG:10586" in steps[1]
    rd = ([155000.0, 121400.0], [463000.0, 487400.0], [0.0, 2.5])
    lon, lat, h = Transformer.from_crs("EPSG:7415", "EPSG:4937").transform(*rd)
    assert h is not None
    px, py, pz = proj(7931, 9989, lon, lat, h, 2026.9)
    ox, oy, oz = direct.transform(*rd)
    _, _, apart = GEOD.inv(ox, oy, px, py)
    assert np.abs(apart).max() < 0.001
    assert oz is not None
    assert np.abs(oz - pz).max() < 0.001


@pytest.mark.parametrize("code", ["EPSG:9988", "EPSG:9989", "EPSG:7789", "EPSG:7912", "EPSG:10605"])
def test_an_itrf_position_without_an_epoch_is_refused(code: str) -> None:
    with pytest.raises(CrsError, match="epoch"):
        Transformer.from_crs("EPSG:4937", code)
    with pytest.raises(CrsError, match="epoch"):
        Transformer.from_crs(code, "EPSG:7415")


@pytest.mark.parametrize("epoch", [1800.0, 2200.0, float("nan"), float("inf")])
def test_epochs_out_of_range_are_refused(epoch: float) -> None:
    with pytest.raises(CrsError, match="decimal year"):
        Transformer.from_crs("EPSG:4937", "EPSG:9989", epoch=epoch)


def test_etrf2000_is_etrs89_and_an_epoch_does_not_change_it() -> None:
    plain = Transformer.from_crs("EPSG:7931", "EPSG:4937").transform([5.0], [52.0], [40.0])
    assert [float(c[0]) for c in plain if c is not None] == [5.0, 52.0, 40.0]
    same = Transformer.from_crs("EPSG:7415", "EPSG:4937", epoch=2026.9)
    assert "epoch" not in same.operation.description
