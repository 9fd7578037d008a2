"""The parking calendar: local slots across daylight saving, day types, Dutch holidays."""

from __future__ import annotations

import datetime as dt

import numpy as np

from arserver.insight.parking import calendar


def _utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


def _local(*args: int) -> float:
    return dt.datetime(*args, tzinfo=calendar.ZONE).timestamp()


def test_offset_changes_at_the_eu_summer_time_switch() -> None:
    times = np.array([_utc(2026, 3, 29, 0, 59), _utc(2026, 3, 29, 1, 0), _utc(2026, 10, 25, 1)])
    assert calendar.utc_offset(times).tolist() == [3600, 7200, 3600]


def test_the_same_wall_clock_time_is_the_same_slot_in_winter_and_summer() -> None:
    winter, summer = _local(2026, 2, 16, 8, 5), _local(2026, 6, 15, 8, 5)
    assert summer - winter != round((summer - winter) / 86400) * 86400  # an hour apart in UTC
    slots = calendar.local_slot(np.array([winter, summer]))
    assert slots.tolist() == [32, 32]


def test_day_types_are_local_weekdays_and_dutch_holidays() -> None:
    times = np.array(
        [
            _local(2026, 4, 13, 12),  # Monday
            _local(2026, 4, 19, 23, 30),  # Sunday, late evening
            _local(2026, 4, 27, 0, 10),  # King's Day, just after local midnight
            _local(2026, 12, 25, 12),  # Christmas
            _local(2026, 4, 26, 23, 59),  # the Sunday before King's Day
        ]
    )
    assert calendar.day_type(times).tolist() == [0, 6, calendar.HOLIDAY, calendar.HOLIDAY, 6]


def test_local_midnight_starts_a_new_day_not_utc_midnight() -> None:
    t = _local(2026, 7, 1, 0, 30)  # 22:30 UTC on 30 June
    assert calendar.weekday(np.array([t])).tolist() == [2]  # Wednesday 1 July
    assert calendar.local_slot(np.array([t])).tolist() == [2]


def test_non_finite_times_do_not_crash_and_arrays_keep_their_shape() -> None:
    times = np.array([[np.nan, np.inf], [_local(2026, 1, 5, 9), -np.inf]])
    types, slots = calendar.day_type_and_slot(times)
    assert types.shape == slots.shape == (2, 2)
    assert types[1, 0] == 0
    assert slots[1, 0] == 36
    assert calendar.day_type(np.empty(0)).size == 0


def test_slot_label_is_the_local_start_time() -> None:
    assert calendar.slot_label(0) == "00:00"
    assert calendar.slot_label(33) == "08:15"
    assert calendar.slot_label(95) == "23:45"
