"""Behaviour of tiles.crs.Transformer: reporting, refusal of ballpark operations, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tiles.crs.transformer as transformer_module
from tiles.crs import Transformer
from tiles.errors import (
    CrsError,
    InvalidCoordinatesError,
    OperationUnavailableError,
    OutsideGridError,
    UnknownCrsError,
)

# Inside the Netherlands: RD New + NAP.
AMERSFOORT_RD = (155_000.0, 463_000.0, 0.0)


def test_every_transformer_states_its_operation_and_accuracy() -> None:
    t = Transformer.from_crs("EPSG:7415", "EPSG:4978")
    assert "RDNAPTRANS(TM)2018" in t.operation.description
    assert t.operation.accuracy_m == pytest.approx(0.001)
    assert not t.operation.degraded
    assert "0.001 m" in t.operation.summary()


def test_proj_legs_report_proj_accuracy() -> None:
    t = Transformer.from_crs("EPSG:7415", "EPSG:32631")  # UTM on WGS 84: PROJ's 1 m frame step
    assert t.operation.accuracy_m == pytest.approx(1.001)
    assert "ETRS89 to WGS 84" in t.operation.description


def test_wgs84_is_etrs89_by_convention_and_only_the_stated_accuracy_changes() -> None:
    convention = Transformer.from_crs("EPSG:7415", "EPSG:4978")
    strict = Transformer.from_crs("EPSG:7415", "EPSG:4978", wgs84_as_etrs89=False)
    assert "frame convention" in convention.operation.description
    assert strict.operation.accuracy_m == pytest.approx(1.001)
    a = convention.transform(*[[v] for v in AMERSFOORT_RD])
    b = strict.transform(*[[v] for v in AMERSFOORT_RD])
    for u, v in zip(a, b, strict=True):
        assert u is not None
        assert v is not None
        # PROJ converts on the WGS 84 ellipsoid, we on GRS80: about 0.1 mm apart here.
        np.testing.assert_allclose(u, v, rtol=0, atol=2e-4)


def test_amsterdam_nap_zero_is_about_43_m_above_the_ellipsoid() -> None:
    _, _, h = Transformer.from_crs("EPSG:7415", "EPSG:4979").transform(
        [121_400.0], [487_400.0], [0.0]
    )
    assert h is not None
    assert h[0] == pytest.approx(43.0, abs=0.1)


def test_round_trip_rd_etrs89_rd_within_half_a_millimetre() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(10_000.0, 280_000.0, 5_000)
    y = rng.uniform(300_000.0, 620_000.0, 5_000)
    nap = rng.uniform(-10.0, 300.0, 5_000)
    lon, lat, h = Transformer.from_crs("EPSG:7415", "EPSG:4937").transform(x, y, nap)
    x2, y2, nap2 = Transformer.from_crs("EPSG:4937", "EPSG:7415").transform(lon, lat, h)
    assert nap2 is not None
    # Variant 1 is not an exact inverse of itself (the two directions fix different heights).
    assert np.abs(x2 - x).max() < 5e-4
    assert np.abs(y2 - y).max() < 5e-4
    assert np.abs(nap2 - nap).max() < 1e-9


def test_round_trip_through_ecef_within_half_a_millimetre() -> None:
    x, y, nap = (np.array([v]) for v in AMERSFOORT_RD)
    ecef = Transformer.from_crs("EPSG:7415", "EPSG:4978").transform(x, y, nap)
    back = Transformer.from_crs("EPSG:4978", "EPSG:7415").transform(*ecef)
    assert back[2] is not None
    assert abs(back[0][0] - x[0]) < 5e-4
    assert abs(back[1][0] - y[0]) < 5e-4
    assert abs(back[2][0] - nap[0]) < 1e-6


@pytest.mark.parametrize(
    ("source", "target", "point"),
    [
        ("EPSG:4937", "EPSG:7415", (2.3522, 48.8566, 100.0)),  # Paris
        ("EPSG:4326", "EPSG:28992", (12.0, 52.0)),  # east of the grid
        ("EPSG:7415", "EPSG:4937", (900_000.0, 463_000.0, 0.0)),  # far east in RD
        ("EPSG:28992", "EPSG:4326", (155_000.0, -400_000.0)),  # far south in RD
    ],
)
def test_points_outside_the_grid_raise_and_no_nan_leaks(
    source: str, target: str, point: tuple[float, ...]
) -> None:
    t = Transformer.from_crs(source, target)
    inside = {"EPSG:4937": (5.0, 52.0, 40.0), "EPSG:4326": (5.0, 52.0), "EPSG:7415": AMERSFOORT_RD}
    good = inside.get(source, AMERSFOORT_RD[: len(point)])
    columns = [[g, p] for g, p in zip(good, point, strict=True)]
    with pytest.raises(OutsideGridError) as caught:
        t.transform(*columns)
    assert caught.value.indices == (1,)
    assert caught.value.count == 1
    assert "outside" in str(caught.value)


def test_outside_index_counts_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transformer_module, "CHUNK_POINTS", 4)
    lon = np.full(10, 5.0)
    lat = np.full(10, 52.0)
    lon[6] = 20.0
    lon[9] = -3.0
    with pytest.raises(OutsideGridError) as caught:
        Transformer.from_crs("EPSG:4258", "EPSG:28992").transform(lon, lat)
    assert caught.value.indices == (6, 9)
    assert caught.value.count == 2


def test_chunked_and_whole_results_are_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(10_000.0, 280_000.0, 1_000)
    y = rng.uniform(300_000.0, 620_000.0, 1_000)
    nap = rng.uniform(-10.0, 300.0, 1_000)
    t = Transformer.from_crs("EPSG:7415", "EPSG:4978")
    whole = t.transform(x, y, nap)
    monkeypatch.setattr(transformer_module, "CHUNK_POINTS", 7)
    chunked = t.transform(x, y, nap)
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_array_equal(a, b)


def test_best_operation_with_a_missing_grid_is_refused_naming_the_grid() -> None:
    with pytest.raises(OperationUnavailableError) as caught:
        Transformer.from_crs("EPSG:4289", "EPSG:4258")  # Amersfoort geographic needs rdtrans2018
    assert "nl_nsgi_rdtrans2018.tif" in caught.value.missing_grids
    assert "nl_nsgi_rdtrans2018.tif" in str(caught.value)


def test_ballpark_only_transformation_is_refused() -> None:
    with pytest.raises(OperationUnavailableError, match="ballpark"):
        Transformer.from_crs("EPSG:4289", "EPSG:4301")


def test_ballpark_is_used_only_when_explicitly_allowed() -> None:
    t = Transformer.from_crs("EPSG:4289", "EPSG:4301", allow_ballpark=True)
    assert t.operation.degraded
    assert t.operation.accuracy_m is None
    assert "DEGRADED" in t.operation.summary()
    x, y, _ = t.transform([5.0], [52.0])
    assert math.isfinite(x[0])
    assert math.isfinite(y[0])


def test_nap_height_with_etrs89_horizontal_is_refused_rather_than_ballparked() -> None:
    # PROJ would take NAP height as ellipsoidal height (43 m off in Amsterdam) without its grid.
    with pytest.raises(OperationUnavailableError) as caught:
        Transformer.from_crs("EPSG:4937", "EPSG:4258+5709")
    assert "nl_nsgi_nlgeo2018.tif" in caught.value.missing_grids


@pytest.mark.parametrize("definition", ["EPSG:99999", "not a crs", ""])
def test_unknown_crs_raises_a_typed_error(definition: str) -> None:
    with pytest.raises(UnknownCrsError, match="unknown CRS"):
        Transformer.from_crs(definition, "EPSG:4326")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_coordinates_raise_with_the_index(bad: float) -> None:
    t = Transformer.from_crs("EPSG:7415", "EPSG:4978")
    with pytest.raises(InvalidCoordinatesError) as caught:
        t.transform([155_000.0, 155_000.0, bad], [463_000.0] * 3, [0.0] * 3)
    assert caught.value.index == 2


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(InvalidCoordinatesError, match="same length"):
        Transformer.from_crs("EPSG:7415", "EPSG:4978").transform([1.0, 2.0], [1.0], [1.0])


def test_strings_that_are_not_numbers_raise() -> None:
    with pytest.raises(InvalidCoordinatesError, match="not numbers"):
        Transformer.from_crs("EPSG:28992", "EPSG:4326").transform(["a"], ["b"])


def test_heights_for_a_2d_rd_source_are_refused_with_a_hint() -> None:
    with pytest.raises(CrsError, match="EPSG:7415"):
        Transformer.from_crs("EPSG:28992", "EPSG:4979").transform([155_000.0], [463_000.0], [0.0])


def test_geocentric_target_requires_heights() -> None:
    with pytest.raises(CrsError, match="heights"):
        Transformer.from_crs("EPSG:7415", "EPSG:4978").transform([155_000.0], [463_000.0])


def test_without_heights_a_3d_source_gives_2d_output() -> None:
    x, y, z = Transformer.from_crs("EPSG:7415", "EPSG:4937").transform([155_000.0], [463_000.0])
    assert z is None
    assert x[0] == pytest.approx(5.3872, abs=1e-4)
    assert y[0] == pytest.approx(52.1552, abs=1e-4)


def test_same_crs_is_a_no_op() -> None:
    t = Transformer.from_crs("EPSG:4326", "EPSG:4326")
    assert t.operation.accuracy_m == 0.0
    x, y, _ = t.transform([5.0], [52.0])
    assert (x[0], y[0]) == (5.0, 52.0)


def test_compound_rd_plus_nap_by_parts_uses_rdnaptrans() -> None:
    t = Transformer.from_crs("EPSG:28992+5709", "EPSG:4937")
    assert "RDNAPTRANS" in t.operation.description
