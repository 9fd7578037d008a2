"""Occupancy of zones from bay sensors and of car parks from counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from arserver.insight.parking.occupancy import (
    BayState,
    Thresholds,
    car_park_occupancy,
    zone_occupancy,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LIMITS = Thresholds(
    bay_silent_after=timedelta(hours=2),
    bay_stuck_after=timedelta(hours=24),
    counter_silent_after=timedelta(minutes=30),
)


def bay(name: str, value: float | None, age_min: float, unchanged_h: float = 1.0) -> BayState:
    if value is None:
        return BayState(name, None, None, None)
    time = NOW - timedelta(minutes=age_min)
    return BayState(name, value, time, time - timedelta(hours=unchanged_h))


def test_fresh_bays_count_as_occupied_and_free() -> None:
    result = zone_occupancy(4, [bay("a", 1, 5), bay("b", 0, 10), bay("c", 1, 1), bay("d", 0, 2)],
                            NOW, LIMITS)  # fmt: skip
    assert (result.occupied, result.free, result.unknown) == (2, 2, 0)
    assert result.rate == 0.5
    assert result.time == NOW - timedelta(minutes=1)
    assert result.flags == ()


def test_silent_and_stuck_bays_are_unknown_never_free() -> None:
    bays = [
        bay("fresh", 1, 5),
        bay("silent", 0, 180),  # 3 h without a word
        bay("stuck", 0, 5, unchanged_h=30),  # reports "free" for 30 h on end
        bay("never", None, 0),
    ]
    result = zone_occupancy(4, bays, NOW, LIMITS)
    assert (result.occupied, result.free, result.unknown) == (1, 0, 3)
    assert result.rate == 1.0
    assert result.silent == ("never", "silent")
    assert result.stuck == ("stuck",)
    assert {"silent_bays", "stuck_bays"} <= set(result.flags)


def test_capacity_beyond_the_sensors_is_unknown_and_rate_is_of_the_known_part() -> None:
    result = zone_occupancy(10, [bay("a", 1, 1), bay("b", 0, 1)], NOW, LIMITS)
    assert (result.capacity, result.occupied, result.free, result.unknown) == (10, 1, 1, 8)
    assert result.rate == 0.5
    assert result.expected_free == 5.0
    assert "uncovered" in result.flags


def test_a_zone_with_nothing_known_has_no_rate() -> None:
    result = zone_occupancy(None, [bay("a", 1, 500)], NOW, LIMITS)
    assert (result.capacity, result.unknown) == (1, 1)
    assert (result.rate, result.expected_free) == (None, None)
    assert "no_data" in result.flags


def test_more_bays_than_capacity_raise_the_capacity_and_say_so() -> None:
    result = zone_occupancy(1, [bay("a", 1, 1), bay("b", 1, 1)], NOW, LIMITS)
    assert (result.capacity, result.occupied) == (2, 2)
    assert "more_bays_than_capacity" in result.flags


def test_counter_above_capacity_or_below_zero_is_clamped_and_flagged() -> None:
    time = NOW - timedelta(minutes=3)
    over = car_park_occupancy(100, 130, time, NOW, LIMITS)
    assert (over.free, over.occupied, over.rate) == (100, 0, 0.0)
    assert over.flags == ("above_capacity",)
    under = car_park_occupancy(100, -4, time, NOW, LIMITS)
    assert (under.free, under.occupied, under.rate) == (0, 100, 1.0)
    assert under.flags == ("below_zero",)


def test_a_silent_counter_makes_the_car_park_unknown() -> None:
    result = car_park_occupancy(250, 40, NOW - timedelta(hours=2), NOW, LIMITS)
    assert (result.unknown, result.free, result.rate) == (250, 0, None)
    assert result.flags == ("silent_counter",)
    assert car_park_occupancy(250, None, None, NOW, LIMITS).flags == ("no_data",)


def test_a_closed_car_park_is_flagged() -> None:
    result = car_park_occupancy(80, 80, NOW, NOW, LIMITS, is_open=False)
    assert (result.flags, result.free) == (("closed",), 80)


def test_json_names_every_count() -> None:
    value = zone_occupancy(2, [bay("a", 1, 1), bay("b", 0, 1)], NOW, LIMITS).to_json()
    assert (value["occupancy"], value["free"], value["capacity"]) == (0.5, 1, 2)
    assert value["time"] == (NOW - timedelta(minutes=1)).isoformat()
