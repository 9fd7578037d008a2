"""The rule engine as a pure state machine: rules, states and readings in, new states and alert
transitions out; no database."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from arserver.domain import AlertChange
from arserver.insight.rules import Outcome, Point, Rule, RuleState, Series, run

T0 = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


#: NO2 above 40 opens at once, back below 35 resolves at once.
BASE = Rule("r1", "no2", None, True, 40.0, 35.0, 0, 0, 0)


def rule(**overrides: Any) -> Rule:
    return replace(BASE, **overrides)


def ids() -> Callable[[], str]:
    count = iter(range(1, 1000))
    return lambda: f"a{next(count)}"


def points(series: Sequence[tuple[float, float]]) -> list[Point]:
    return [Point(at(m), v) for m, v in series]


def drive(
    rules: Sequence[Rule],
    series: Sequence[tuple[float, float]],
    state: RuleState | None = None,
    sensor: str = "air-1",
    new_id: Callable[[], str] | None = None,
) -> Outcome:
    states = {(r.id, sensor): state for r in rules if state is not None}
    return run(rules, {(sensor, "no2"): points(series)}, states, new_id or ids())


def opened(alert: str, minutes: float, value: float, rule_id: str = "r1") -> AlertChange:
    return AlertChange(alert, "open", rule_id, "air-1", "no2", value, at(minutes))


def resolved(alert: str, minutes: float, value: float, rule_id: str = "r1") -> AlertChange:
    return AlertChange(alert, "resolved", rule_id, "air-1", "no2", value, at(minutes))


def test_an_alert_opens_only_after_the_value_stayed_beyond_for_open_after() -> None:
    ten_minutes = rule(open_after_s=600)
    early = drive([ten_minutes], [(0, 30), (5, 45), (10, 46)])
    assert early.transitions == []
    assert early.states == {("r1", "air-1"): RuleState(at(10), at(5), None, None)}
    later = drive([ten_minutes], [(15, 47)], early.states["r1", "air-1"])
    assert later.transitions == [opened("a1", 15, 47.0)]
    assert later.states == {("r1", "air-1"): RuleState(at(15), None, None, "a1")}


def test_a_dip_below_the_threshold_restarts_the_open_duration() -> None:
    outcome = drive([rule(open_after_s=600)], [(0, 45), (5, 39), (10, 45), (15, 45)])
    assert outcome.transitions == []
    assert outcome.states["r1", "air-1"] == RuleState(at(15), at(10), None, None)
    outcome = drive([rule(open_after_s=600)], [(20, 45)], outcome.states["r1", "air-1"])
    assert outcome.transitions == [opened("a1", 20, 45.0)]


def test_hysteresis_values_between_reset_and_threshold_neither_open_nor_resolve() -> None:
    band = rule(threshold=40, reset=35)
    # Inside the band (35..40) nothing opens ...
    quiet = drive([band], [(0, 38), (1, 39.9), (2, 36), (3, 40)])
    assert quiet.transitions == []
    assert quiet.states["r1", "air-1"] == RuleState(at(3), None, None, None)
    # ... and once open, inside the band nothing resolves: no flapping.
    open_then_band = drive([band], [(0, 41), (1, 38), (2, 41), (3, 36), (4, 35)])
    assert open_then_band.transitions == [opened("a1", 0, 41.0)]
    assert open_then_band.states["r1", "air-1"] == RuleState(at(4), None, None, "a1")
    out = drive([band], [(5, 34.9)], open_then_band.states["r1", "air-1"])
    assert out.transitions == [resolved("a1", 5, 34.9)]
    assert out.states["r1", "air-1"] == RuleState(at(5), None, None, None)


def test_an_alert_resolves_after_the_value_stayed_back_for_resolve_after() -> None:
    twenty = rule(resolve_after_s=1200)
    state = RuleState(at(15), None, None, "a1")
    # 34 and 33 are back, 36 interrupts, back again from minute 40.
    outcome = drive(
        [twenty], [(20, 38), (25, 34), (30, 33), (35, 36), (40, 30), (45, 30), (50, 30)], state
    )
    assert outcome.transitions == []
    assert outcome.states["r1", "air-1"] == RuleState(at(50), None, at(40), "a1")
    done = drive([twenty], [(60, 30)], outcome.states["r1", "air-1"])
    assert done.transitions == [resolved("a1", 60, 30.0)]
    assert done.states["r1", "air-1"] == RuleState(at(60), None, None, None)


def test_late_readings_do_not_move_the_state() -> None:
    state = RuleState(at(10), None, None, None)
    outcome = drive([rule()], [(5, 90), (10, 90)], state)  # older than, or as old as, the last
    assert outcome.transitions == []
    assert outcome.states["r1", "air-1"] == state
    # In one batch readings are taken by time, so an earlier one is not late.
    sorted_batch = drive([rule(open_after_s=300)], [(5, 90), (0, 90)])
    assert sorted_batch.transitions == [opened("a1", 5, 90.0)]


def test_below_rules_mirror_above_rules() -> None:
    low = rule(above=False, threshold=10, reset=15, open_after_s=60, resolve_after_s=60)
    outcome = drive([low], [(0, 12), (1, 9), (2, 8), (3, 14), (4, 16), (5, 17)])
    assert outcome.transitions == [opened("a1", 2, 8.0), resolved("a1", 5, 17.0)]
    assert outcome.states["r1", "air-1"] == RuleState(at(5), None, None, None)
    equal = drive([low], [(0, 10), (1, 10)])  # at the threshold is not beyond it
    assert equal.transitions == []


def test_windowed_rules_compare_the_supplied_trailing_mean() -> None:
    hourly = rule(window_s=3600, resolve_after_s=1800)
    means = [(0, 50.0), (15, 50.0), (60, 42.5), (75, 35.0), (90, 27.5), (105, 20.0), (120, 20.0)]
    series = [Point(at(m), 20.0 if m >= 60 else 50.0, {3600: mean}) for m, mean in means]
    outcome = run([hourly], {("air-1", "no2"): series}, {}, ids())
    assert outcome.transitions == [opened("a1", 0, 50.0), resolved("a1", 120, 20.0)]
    # A raw rule on the same points sees the raw values.
    raw = run([rule(id="r2")], {("air-1", "no2"): series}, {}, ids())
    assert raw.transitions == [opened("a1", 0, 50.0, "r2"), resolved("a1", 60, 20.0, "r2")]


def test_series_means_cover_the_trailing_window_end_inclusive() -> None:
    times = [at(m) for m in (0, 15, 30, 45, 60, 75)]
    data = Series(times, [50, 50, 50, 50, 20, 20])
    assert data.mean(at(45), 3600) == 50.0
    assert data.mean(at(60), 3600) == 42.5  # (09:00 - 1 h, 09:00]: minute 0 is out
    assert data.mean(at(75), 3600) == 35.0
    assert data.mean(at(50), 600) == 50.0  # only minute 45
    assert data.mean(at(52), 60) is None
    assert Series([], []).mean(at(0), 60) is None


def test_a_sensor_rule_watches_only_its_sensor_and_kind() -> None:
    only_two = rule(sensor_id="air-2")
    series = {
        ("air-1", "no2"): points([(0, 90)]),
        ("air-2", "pm10"): points([(0, 90)]),
        ("air-2", "no2"): points([(1, 90)]),
    }
    outcome = run([only_two], series, {}, ids())
    assert outcome.transitions == [AlertChange("a1", "open", "r1", "air-2", "no2", 90.0, at(1))]
    assert outcome.states == {("r1", "air-2"): RuleState(at(1), None, None, "a1")}


def test_an_acknowledged_alert_still_resolves() -> None:
    # The machine knows an alert as not yet resolved; acknowledging it changes no state.
    acknowledged = RuleState(at(0), None, None, "a7")
    outcome = drive([rule()], [(5, 20)], acknowledged)
    assert outcome.transitions == [resolved("a7", 5, 20.0)]
    assert outcome.states["r1", "air-1"] == RuleState(at(5), None, None, None)


def test_rules_run_in_order_with_their_own_states_and_fresh_ids() -> None:
    first, second = rule(id="r1"), rule(id="r2", threshold=60, reset=50)
    states = {("r2", "air-1"): RuleState(at(0), None, None, "old")}
    outcome = run([first, second], {("air-1", "no2"): points([(1, 70), (2, 45)])}, states, ids())
    assert outcome.transitions == [opened("a1", 1, 70.0), resolved("old", 2, 45.0, "r2")]
    assert outcome.states == {
        ("r1", "air-1"): RuleState(at(2), None, None, "a1"),
        ("r2", "air-1"): RuleState(at(2), None, None, None),
    }
