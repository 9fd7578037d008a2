"""The forecaster: shapes and bounds, fallbacks, no look-ahead, robustness to bad series."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from arserver.insight.parking.forecast import HORIZONS_MIN, Forecaster, huber_ridge
from arserver.insight.parking.series import Series
from arserver.insight.parking.synthetic import DEFAULT_START, generate_series

DAY = 86400.0


@pytest.fixture(scope="module")
def lots() -> dict[str, Series]:
    return generate_series(8, 28, seed=3)


@pytest.fixture(scope="module")
def fitted(lots: dict[str, Series]) -> Forecaster:
    return Forecaster.fit(lots, until=DEFAULT_START + 21 * DAY)


ORIGIN = DEFAULT_START + 24 * DAY + 10 * 3600.0 + 7 * 60  # a Thursday morning, off the grid


def test_forecasts_cover_every_horizon_within_capacity(
    fitted: Forecaster, lots: dict[str, Series]
) -> None:
    for lot, series in lots.items():
        found = fitted.forecast(lot, series, ORIGIN)
        assert [f.horizon_min for f in found] == list(HORIZONS_MIN)
        for f in found:
            assert f.method == "model"
            assert 0.0 <= f.low <= f.free <= f.high <= series.capacity
            assert f.occupancy == pytest.approx(1.0 - f.free / series.capacity)


def test_a_forecast_ignores_everything_after_its_origin(
    fitted: Forecaster, lots: dict[str, Series]
) -> None:
    lot, series = next(iter(lots.items()))
    rng = np.random.default_rng(0)
    later = series.times > ORIGIN
    scrambled = np.where(later, rng.uniform(0, series.capacity, series.times.size), series.free)
    extra_t = np.concatenate([series.times, [ORIGIN + 60.0, ORIGIN + 900.0]])
    extra_f = np.concatenate([scrambled, [0.0, series.capacity]])
    changed = Series.build(extra_t, extra_f, series.capacity)
    assert fitted.forecast(lot, series, ORIGIN) == fitted.forecast(lot, changed, ORIGIN)
    # The many-origin path agrees with one origin at a time, on truncated data.
    origins = ORIGIN + 900.0 * np.arange(8)
    many = fitted.predict(lot, series, origins)
    for k, o in enumerate(origins):
        one = fitted.predict(lot, series.until(o), [o])
        for h in HORIZONS_MIN:
            assert many[h].free[k] == pytest.approx(one[h].free[0])


def test_the_residual_booster_takes_part_in_model_forecasts(
    fitted: Forecaster, lots: dict[str, Series]
) -> None:
    assert set(fitted.boosters) == set(HORIZONS_MIN)
    linear_only = dataclasses.replace(fitted, boosters={})
    lot, series = next(iter(lots.items()))
    origins = ORIGIN + 900.0 * np.arange(16)
    boosted = fitted.predict(lot, series, origins)
    linear = linear_only.predict(lot, series, origins)
    for h in HORIZONS_MIN:
        assert not np.allclose(boosted[h].free, linear[h].free)
        assert np.all((boosted[h].free >= 0.0) & (boosted[h].free <= series.capacity))


def test_too_little_history_for_a_booster_leaves_the_linear_model(
    lots: dict[str, Series],
) -> None:
    one_lot = dict(list(lots.items())[:1])
    forecaster = Forecaster.fit(one_lot, until=DEFAULT_START + 21 * DAY)
    assert forecaster.boosters == {}
    lot, series = next(iter(one_lot.items()))
    assert [f.method for f in forecaster.forecast(lot, series, ORIGIN)] == ["model"] * 3


def test_forecast_many_matches_forecast(fitted: Forecaster, lots: dict[str, Series]) -> None:
    many = fitted.forecast_many(lots, ORIGIN)
    for lot, series in lots.items():
        one = fitted.forecast(lot, series, ORIGIN)
        assert [f.method for f in many[lot]] == [f.method for f in one]
        for a, b in zip(many[lot], one, strict=True):
            assert (a.free, a.low, a.high) == pytest.approx((b.free, b.low, b.high))


def test_unknown_lots_fall_back_by_how_much_history_they_have(
    fitted: Forecaster, lots: dict[str, Series]
) -> None:
    series = next(iter(lots.values()))
    long = fitted.forecast("new-with-history", series, ORIGIN)
    assert {f.method for f in long} == {"profile_delta"}
    short = fitted.forecast("new-short", series.until(DEFAULT_START + 2 * DAY), ORIGIN)
    assert {f.method for f in short} == {"last_value"}
    last = float(series.until(DEFAULT_START + 2 * DAY).free[-1])
    assert all(f.free == pytest.approx(last) for f in short)


def test_no_data_before_the_origin_gives_no_forecast(fitted: Forecaster) -> None:
    assert fitted.forecast("empty", Series.empty(50.0), ORIGIN) == []
    late = Series.build([ORIGIN + 10.0], [3.0], 50.0)
    assert fitted.forecast("late", late, ORIGIN) == []


def test_odd_lots_neither_crash_nor_poison_the_pool(
    fitted: Forecaster, lots: dict[str, Series]
) -> None:
    times = DEFAULT_START + 600.0 * np.arange(3000)
    odd = {
        "closed": Series.build(times, np.full(3000, 120.0), 120.0),  # always empty, or dead
        "full": Series.build(times, np.zeros(3000), 120.0),
        "flapping": Series.build(times, np.where(np.arange(3000) % 2, 0.0, 120.0), 120.0),
        "tiny": Series.build([DEFAULT_START], [4.0], 10.0),
        "empty": Series.empty(10.0),
    }
    forecaster = Forecaster.fit({**lots, **odd}, until=DEFAULT_START + 21 * DAY)
    for name in ("closed", "full", "flapping"):
        for f in forecaster.forecast(name, odd[name], ORIGIN):
            assert 0.0 <= f.low <= f.free <= f.high <= 120.0
    assert {f.method for f in forecaster.forecast("tiny", odd["tiny"], ORIGIN)} == {"last_value"}
    assert forecaster.forecast("empty", odd["empty"], ORIGIN) == []
    for lot, series in lots.items():
        a = forecaster.forecast(lot, series, ORIGIN)
        b = fitted.forecast(lot, series, ORIGIN)
        for fa, fb in zip(a, b, strict=True):
            assert abs(fa.free - fb.free) <= 0.05 * series.capacity


def test_a_forecaster_fitted_on_nothing_serves_by_the_fallback() -> None:
    forecaster = Forecaster.fit({})
    s = Series.build(DEFAULT_START + 300.0 * np.arange(10), np.arange(10.0), 20.0)
    found = forecaster.forecast("x", s, DEFAULT_START + 3000.0)
    assert [f.method for f in found] == ["last_value"] * 3
    assert found[0].free == 9.0


def test_fit_reports_progress_up_to_one(lots: dict[str, Series]) -> None:
    seen: list[float] = []
    Forecaster.fit(dict(list(lots.items())[:2]), until=DEFAULT_START + 21 * DAY,
                   progress=seen.append)  # fmt: skip
    assert seen
    assert seen[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in seen)


def test_huber_ridge_recovers_a_line_through_gross_outliers() -> None:
    rng = np.random.default_rng(1)
    x = np.column_stack([np.ones(2000), rng.normal(size=2000)])
    y = 0.5 + 2.0 * x[:, 1] + rng.normal(0, 0.1, 2000)
    y[:200] += 50.0  # ten per cent wildly wrong
    beta = huber_ridge(x, y, ridge=1e-6)
    assert beta == pytest.approx([0.5, 2.0], abs=0.1)
    assert np.array_equal(huber_ridge(x[:1], y[:1]), np.zeros(2))
