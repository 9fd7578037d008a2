"""Weekly profiles: local-time slots, holidays, robustness, filling, peaks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from arserver.insight.parking import calendar
from arserver.insight.parking.profile import weekly_profile
from arserver.insight.parking.series import Series

START = dt.datetime(2026, 3, 2, tzinfo=calendar.ZONE).timestamp()  # a Monday, local midnight


def _pattern(times: np.ndarray) -> np.ndarray:
    """Occupancy by local time: busy at 12:00 local on workdays, quiet at weekends."""
    types, slots = calendar.day_type_and_slot(times)
    hours = slots / 4.0
    workday = np.exp(-(((hours - 12.0) / 3.0) ** 2)) * 0.8 + 0.1
    return np.where(types <= 4, workday, 0.2)


def _series(days: int, capacity: float = 200.0, step: float = 300.0) -> Series:
    t = START + np.arange(0, days * 86400, step)
    occ = _pattern(t)
    return Series.build(t, capacity * (1.0 - occ), capacity)


def test_profile_follows_local_time_across_the_summer_time_change() -> None:
    profile = weekly_profile(_series(42))  # 2 March .. 12 April crosses 29 March
    noon_winter = dt.datetime(2026, 3, 10, 12, tzinfo=calendar.ZONE).timestamp()
    noon_summer = dt.datetime(2026, 4, 7, 12, tzinfo=calendar.ZONE).timestamp()
    rates = profile.at(np.array([noon_winter, noon_summer]))
    assert rates == pytest.approx([0.9, 0.9], abs=0.02)
    assert profile.at(np.array([noon_summer - 3 * 3600]))[0] < 0.6


def test_holidays_fall_back_to_sunday_without_holiday_data() -> None:
    profile = weekly_profile(_series(21))  # 2..22 March: no Dutch holiday
    assert profile.days[calendar.HOLIDAY] == 0
    assert np.allclose(profile.values[calendar.HOLIDAY], profile.values[6])


def test_holidays_get_their_own_profile_when_there_are_some() -> None:
    t = START + np.arange(0, 42 * 86400, 300.0)
    occ = np.where(calendar.is_holiday(t), 0.7, _pattern(t))  # Good Friday, Easter: busy
    profile = weekly_profile(Series.build(t, 100.0 * (1 - occ), 100.0))
    assert profile.days[calendar.HOLIDAY] == 3
    assert profile.values[calendar.HOLIDAY].mean() > 0.5 > profile.values[6].mean()


def test_one_odd_day_barely_moves_the_profile() -> None:
    t = START + np.arange(0, 35 * 86400, 300.0)
    occ = _pattern(t)
    odd = (t >= START + 7 * 86400) & (t < START + 8 * 86400)  # the second Monday: empty
    occ = np.where(odd, 0.0, occ)
    profile = weekly_profile(Series.build(t, 100.0 * (1 - occ), 100.0))
    assert profile.values[0, 48] == pytest.approx(0.9, abs=0.05)


def test_slots_without_data_are_filled_from_their_neighbours() -> None:
    s = _series(14)
    hour = np.mod(s.times + calendar.utc_offset(s.times), 86400) / 3600
    keep = (hour < 10) | (hour >= 11)  # never a reading between 10:00 and 11:00
    profile = weekly_profile(Series.build(s.times[keep], s.free[keep], s.capacity))
    assert np.isfinite(profile.values).all()
    assert 0.6 < profile.values[0, 42] < 0.95  # 10:30, between the 09:45 and 11:00 values


def test_an_empty_series_gives_an_invalid_profile_of_nans() -> None:
    profile = weekly_profile(Series.empty())
    assert not profile.valid
    assert np.isnan(profile.at(np.array([START]))).all()
    assert profile.peaks(3) == []


def test_until_leaves_later_points_out() -> None:
    s = _series(28)
    later = s.times >= START + 14 * 86400
    changed = Series.build(s.times, np.where(later, 0.0, s.free), s.capacity)
    a = weekly_profile(s, until=START + 14 * 86400)
    b = weekly_profile(changed, until=START + 14 * 86400)
    assert np.array_equal(a.values, b.values)


def test_peaks_and_json() -> None:
    profile = weekly_profile(_series(21))
    peaks = profile.peaks(2)
    assert len(peaks) == 2
    day, time, rate = peaks[0]
    assert day in calendar.DAY_TYPE_NAMES[:5]
    assert time in {"11:45", "12:00"}
    assert rate == pytest.approx(0.9, abs=0.02)
    data = profile.to_json()
    assert set(data["days"]) == set(calendar.DAY_TYPE_NAMES_ALL)
    assert all(len(v) == 96 for v in data["days"].values())
    assert data["timezone"] == "Europe/Amsterdam"
