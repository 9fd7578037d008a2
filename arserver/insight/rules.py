"""Threshold rules with hysteresis and minimum durations: a pure state machine, no I/O.

A rule watches one kind (optionally one sensor): the raw value, or its mean over a trailing
window (``window_s``; e.g. the hourly mean of NO2). When that value is beyond ``threshold`` for
at least ``open_after_s``, an alert opens; once it is back beyond ``reset`` (the hysteresis band)
for at least ``resolve_after_s``, the alert resolves. Alerts go ``open -> acknowledged ->
resolved``; acknowledging does not stop the rule from resolving it (the machine only knows that
an alert is not yet resolved). Readings older than the last one a rule has seen for a sensor do
not move its state (late data cannot reopen the past).

The caller loads the rules and the states, supplies each reading with the trailing means it
needs (:class:`Series` computes them from the stored observations), stores the new states and
the transitions (:class:`~arserver.domain.AlertChange`) it gets back.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any

from arserver.domain import AlertChange

#: (rule id, sensor id): what a :class:`RuleState` belongs to.
StateKey = tuple[str, str]


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    sensor_id: str | None  # only this sensor; None: every sensor of the kind
    above: bool  # beyond means above ``threshold`` (else below it)
    threshold: float
    reset: float
    window_s: int  # 0: the raw value
    open_after_s: int
    resolve_after_s: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Rule:
        return cls(
            row["id"], row["kind"], row["sensor_id"], bool(row["above"]), row["threshold"],
            row["reset"], row["window_s"], row["open_after_s"], row["resolve_after_s"],
        )  # fmt: skip

    def watches(self, sensor_id: str, kind: str) -> bool:
        return self.kind == kind and self.sensor_id in (None, sensor_id)


@dataclass(frozen=True)
class RuleState:
    """Where a rule stands for one sensor: the time of the last reading it took, since when the
    value is beyond the threshold (no alert) or back past the reset (an alert), and the alert
    that is not resolved yet."""

    last_time: datetime | None = None
    breach_since: datetime | None = None
    clear_since: datetime | None = None
    alert_id: str | None = None


@dataclass(frozen=True)
class Point:
    """A stored reading as the rules see it: its time (timezone-aware), its value, and the mean
    of its datastream over the trailing window ending at its time, per window length in
    seconds (those of the windowed rules that watch it)."""

    time: datetime
    value: float
    means: Mapping[int, float] = field(default_factory=dict)

    def seen_by(self, rule: Rule) -> float:
        """The value ``rule`` compares: raw, or the window mean (the reading's own value when
        none was supplied: a window always holds the reading itself)."""
        return self.means.get(rule.window_s, self.value) if rule.window_s > 0 else self.value


@dataclass(frozen=True)
class Outcome:
    """The states of every (rule, sensor) that took part, and the transitions in order."""

    states: dict[StateKey, RuleState]
    transitions: list[AlertChange]


def run(
    rules: Sequence[Rule],
    series: Mapping[tuple[str, str], Sequence[Point]],
    states: Mapping[StateKey, RuleState],
    new_id: Callable[[], str],
) -> Outcome:
    """Run ``rules`` over new readings ``series`` ({(sensor id, kind): points}); ``states`` are
    the known states (a missing one is a fresh :class:`RuleState`), ``new_id`` names opened
    alerts. Series are taken in their order, rules in theirs, points by time."""
    result: dict[StateKey, RuleState] = {}
    transitions: list[AlertChange] = []
    for (sensor_id, kind), points in series.items():
        ordered = sorted(points, key=lambda p: p.time)
        for rule in rules:
            if not rule.watches(sensor_id, kind):
                continue
            key = (rule.id, sensor_id)
            state = result.get(key) or states.get(key) or RuleState()
            result[key] = step(rule, sensor_id, state, ordered, new_id, transitions)
    return Outcome(result, transitions)


def step(
    rule: Rule,
    sensor_id: str,
    state: RuleState,
    points: Iterable[Point],
    new_id: Callable[[], str],
    transitions: list[AlertChange],
) -> RuleState:
    """Move one rule's state for one sensor through ``points`` (oldest first); appends the
    transitions to ``transitions`` and returns the new state."""
    last, breach, clear = state.last_time, state.breach_since, state.clear_since
    alert = state.alert_id
    open_after = timedelta(seconds=rule.open_after_s)
    resolve_after = timedelta(seconds=rule.resolve_after_s)
    for point in points:
        now = point.time
        if last is not None and now <= last:
            continue  # late: the rule has seen this time already
        last = now
        value = point.seen_by(rule)
        beyond = value > rule.threshold if rule.above else value < rule.threshold
        back = value < rule.reset if rule.above else value > rule.reset
        if alert is None:
            breach = (breach or now) if beyond else None
            if breach is not None and now - breach >= open_after:
                alert = new_id()
                breach = clear = None
                transitions.append(
                    AlertChange(alert, "open", rule.id, sensor_id, rule.kind, value, now)
                )
        else:
            clear = (clear or now) if back else None
            if clear is not None and now - clear >= resolve_after:
                transitions.append(
                    AlertChange(alert, "resolved", rule.id, sensor_id, rule.kind, value, now)
                )
                alert = breach = clear = None
    return RuleState(last, breach, clear, alert)


class Series:
    """A datastream's stored observations (times ascending, timezone-aware) for trailing means:
    prefix sums and a binary search, so each mean costs O(log n)."""

    def __init__(self, times: Sequence[datetime], values: Sequence[float]) -> None:
        self.times = list(times)
        self.sums = [0.0, *accumulate(values)]

    def mean(self, end: datetime, window_s: int) -> float | None:
        """Mean over ``(end - window_s, end]``; None if the window holds nothing."""
        high = bisect_right(self.times, end)
        low = bisect_right(self.times, end - timedelta(seconds=window_s), 0, high)
        if high == low:
            return None
        return (self.sums[high] - self.sums[low]) / (high - low)
