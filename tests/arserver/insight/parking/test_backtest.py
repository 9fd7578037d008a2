"""The backtest: the CSV reader, the protocol, no leakage, and the acceptance on generated data."""

from __future__ import annotations

import numpy as np
import pytest

from arserver.errors import InputError
from arserver.insight.parking.backtest import (
    BUCKET_SECONDS,
    METHODS,
    read_csv_lines,
    run_backtest,
    split_time,
)
from arserver.insight.parking.forecast import HORIZONS_MIN, Forecaster
from arserver.insight.parking.series import Series
from arserver.insight.parking.synthetic import (
    DEFAULT_START,
    csv_lines,
    generate_rows,
    generate_series,
)

DAY = 86400.0
HEADER = "timestamp,lot_id,capacity,free,lat,lon\n"


def test_reader_parses_offsets_z_naive_and_epoch_timestamps() -> None:
    data = read_csv_lines(
        [
            HEADER,
            "2026-03-02T09:00:00+01:00,A,100,40,52.3,4.9\n",
            "2026-03-02T08:10:00Z,A,100,41,,\n",
            "2026-03-02T08:20:00,A,100,42,,\n",  # naive: UTC
            "1772439600,A,100,43,,\n",  # 2026-03-02T08:20:00Z as epoch seconds
            "2026-03-02T08:30:00.5+00:00,A,100,44,,\n",
        ]
    )
    s = data.series["A"]
    assert s.times.tolist() == [1772438400.0, 1772439000.0, 1772439600.0, 1772440200.5]
    assert s.free.tolist() == [40.0, 41.0, 43.0, 44.0]  # same time: the later line wins
    assert data.positions == {"A": (52.3, 4.9)}


def test_reader_counts_bad_rows_by_cause_with_line_numbers() -> None:
    data = read_csv_lines(
        [
            HEADER,
            "2026-03-02T09:00:00Z,A,100,40,,\n",
            "2026-03-02T09:05:00Z,A,100,many,,\n",
            "not a time,A,100,40,,\n",
            "2026-03-02T09:10:00Z,A,-5,40,,\n",
            "2026-03-02T09:15:00Z,,100,40,,\n",
            "2026-03-02T09:20:00Z,A\n",
            "2026-03-02T09:00:00Z,A,100,40,,\n",
            "2026-03-02T09:25:00Z,A,100,NaN,,\n",
            "\n",
        ]
    )
    report = data.report
    assert report.rows == 8
    assert report.dropped == {
        "bad_free": 2, "bad_timestamp": 1, "bad_capacity": 1, "missing_lot_id": 1,
        "short_row": 1,
    }  # fmt: skip
    assert report.first_lines["bad_free"] == [3, 9]
    assert report.noted == {"duplicate": 1}
    assert any("bad_free (lines 3, 9)" in line for line in report.summary())
    assert len(data.series["A"]) == 1


def test_reader_refuses_unusable_files_with_a_clear_message() -> None:
    with pytest.raises(InputError, match="empty"):
        read_csv_lines([])
    with pytest.raises(InputError, match="empty"):
        read_csv_lines(["\n", "  \n"])
    with pytest.raises(InputError, match=r"line 1: missing column free"):
        read_csv_lines(["timestamp,lot_id,capacity\n", "2026-03-02T09:00:00Z,A,100\n"])
    with pytest.raises(InputError, match=r"no usable rows.*bad_free"):
        read_csv_lines([HEADER, "2026-03-02T09:00:00Z,A,100,x,,\n"])
    with pytest.raises(InputError, match="no usable rows"):
        read_csv_lines([HEADER])


def test_reader_accepts_columns_in_any_order_and_a_bom() -> None:
    data = read_csv_lines(["\ufefffree,Capacity,lot_id,timestamp\n", "3,10,B,2026-03-02T09:00Z\n"])
    assert data.series["B"].free.tolist() == [3.0]


def test_reader_keeps_one_point_per_lot_per_bucket_so_memory_follows_time_not_rows() -> None:
    def lines(n: int):  # n readings of one lot within one day, many per bucket
        yield HEADER
        for i in range(n):
            yield f"{1772438400 + (i * 7) % 86400},A,500,{i % 500},,\n"

    small = read_csv_lines(lines(2_000)).series["A"]
    large = read_csv_lines(lines(40_000)).series["A"]
    assert len(large) <= 86400 // BUCKET_SECONDS
    assert len(small) <= len(large) <= 86400 // BUCKET_SECONDS


def test_split_time_is_two_weeks_or_a_third() -> None:
    assert split_time(0.0, 60 * DAY) == 46 * DAY
    assert split_time(0.0, 30 * DAY) == 20 * DAY


def test_backtest_refuses_too_little_data() -> None:
    s = Series.build(DEFAULT_START + 300.0 * np.arange(100), np.ones(100), 10.0)
    with pytest.raises(InputError, match="at least 2 days"):
        run_backtest({"A": s})
    with pytest.raises(InputError, match="no lot"):
        run_backtest({"A": Series.empty()})


def test_backtest_forecasts_never_see_data_after_their_origin() -> None:
    lots = generate_series(6, 21, seed=5)
    cut = split_time(DEFAULT_START, DEFAULT_START + 21 * DAY)
    forecaster = Forecaster.fit(lots, until=cut)
    lot, s = sorted(lots.items())[0]
    origins = cut + 900.0 * np.arange(200)
    full = forecaster.predict(lot, s, origins)
    for k in (0, 57, 199):
        truncated = s.until(origins[k])
        one = forecaster.predict(lot, truncated, origins[k : k + 1])
        for h in HORIZONS_MIN:
            assert full[h].free[k] == pytest.approx(one[h].free[0])
    # Fitting never reads the test period: change it and the fit is the same.
    changed = {
        k: Series.build(v.times, np.where(v.times >= cut, 0.0, v.free), v.capacity)
        for k, v in lots.items()
    }
    refit = Forecaster.fit(changed, until=cut)
    for h in HORIZONS_MIN:
        assert np.array_equal(refit.coefficients[h], forecaster.coefficients[h])
    assert np.array_equal(refit.profiles, forecaster.profiles)


@pytest.mark.parametrize("variant", ["realistic", "regular"])
def test_acceptance_model_beats_every_baseline_on_generated_data(variant: str) -> None:
    lots = generate_series(18, 42, seed=11, variant=variant)
    result = run_backtest(lots)
    assert result.lots_tested == 18
    for h in HORIZONS_MIN:
        model = result.scores[h]["model"].mae
        for method in METHODS[1:]:
            assert model < result.scores[h][method].mae, (h, method)
        # Not just ahead of the profile-corrected last value, but clearly so.
        assert model <= 0.96 * result.scores[h]["profile_delta"].mae, h
        assert 0.7 <= result.coverage[h] <= 0.9
    gain = 1.0 - result.scores[60]["model"].mae / result.scores[60]["last_value"].mae
    assert gain >= 0.25
    assert set(result.to_json()) == {"15", "30", "60"}


def test_backtest_through_the_csv_reader_scores_every_method_on_the_same_targets() -> None:
    data = read_csv_lines(csv_lines(generate_rows(4, 15, seed=2)))
    result = run_backtest(data.series)
    for h in HORIZONS_MIN:
        counts = {result.scores[h][m].n for m in METHODS}
        assert len(counts) == 1
        assert counts.pop() > 0
