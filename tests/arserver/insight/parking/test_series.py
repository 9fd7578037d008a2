"""Series: cleaning on the way in, and "as of" lookups that never look ahead."""

from __future__ import annotations

import numpy as np
import pytest

from arserver.errors import InputError
from arserver.insight.parking.series import Series, asof, resample


def test_build_sorts_keeps_the_last_duplicate_and_clamps() -> None:
    s = Series.build([30.0, 10.0, 20.0, 10.0, np.nan], [5.0, -3.0, 120.0, 7.0, 1.0], 100.0)
    assert s.times.tolist() == [10.0, 20.0, 30.0]
    assert s.free.tolist() == [7.0, 100.0, 5.0]  # the later row at t=10 wins; 120 -> 100
    assert s.clamped == 1  # -3 was dropped with its duplicate time, 120 clamped
    assert s.dropped == 2  # the NaN time and the first row at t=10
    assert s.occupancy.tolist() == pytest.approx([0.93, 0.0, 0.95])


def test_build_refuses_a_capacity_that_is_not_positive() -> None:
    with pytest.raises(InputError, match="capacity"):
        Series.build([1.0], [1.0], 0.0)
    with pytest.raises(InputError, match="capacity"):
        Series.build([1.0], [1.0], float("nan"))


def test_asof_takes_the_last_value_at_or_before_and_leaves_gaps_as_gaps() -> None:
    s = Series.build([100.0, 200.0, 1000.0], [1.0, 2.0, 3.0], 10.0)
    values, ages = asof(s, [50.0, 100.0, 199.0, 900.0, 1000.0], max_age=300.0)
    assert np.isnan(values[0])
    assert np.isnan(values[3])
    assert values[[1, 2, 4]].tolist() == [1.0, 1.0, 3.0]
    assert ages[[1, 2, 4]].tolist() == [0.0, 99.0, 0.0]


def test_asof_of_an_empty_series_is_nan() -> None:
    values, ages = asof(Series.empty(), [1.0, 2.0])
    assert np.isnan(values).all()
    assert np.isnan(ages).all()


def test_resample_puts_values_on_a_grid() -> None:
    s = Series.build([0.0, 600.0], [4.0, 6.0], 10.0)
    grid = resample(s, 0.0, 300.0, 5, max_age=300.0)
    assert grid[:4].tolist() == [4.0, 4.0, 6.0, 6.0]
    assert np.isnan(grid[4])


def test_run_start_says_since_when_the_counter_shows_its_value() -> None:
    s = Series.build([0.0, 60.0, 120.0, 180.0], [5.0, 5.0, 6.0, 6.0], 10.0)
    assert s.run_start.tolist() == [0.0, 0.0, 120.0, 120.0]


def test_until_is_inclusive_or_strict() -> None:
    s = Series.build([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], 5.0)
    assert len(s.until(2.0)) == 2
    assert len(s.until(2.0, inclusive=False)) == 1
    assert s.span_days() == pytest.approx(2.0 / 86400)
