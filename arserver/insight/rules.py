"""Threshold rules with hysteresis and minimum durations, evaluated in the observation write path.

A rule watches one kind (optionally one sensor): the raw value, or its mean over a trailing
window (``window_s``; e.g. the hourly mean of NO2). When that value is beyond ``threshold`` for
at least ``open_after_s``, an alert opens; once it is back beyond ``reset`` (the hysteresis band)
for at least ``resolve_after_s``, the alert resolves. Alerts go ``open -> acknowledged ->
resolved``; acknowledging does not stop the rule from resolving it. Readings older than the last
one a rule has seen for a sensor do not move its state (late data cannot reopen the past).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from arserver.domain import AlertChange, Reading
from arserver.store.schema import alerts, datastreams, observations, rule_states, rules, sensors


def evaluate(connection: Connection, stored: list[Reading]) -> list[AlertChange]:
    """Run the rules over newly stored readings, inside the caller's transaction."""
    if not stored:
        return []
    streams = {r.datastream_id for r in stored}
    owners = {
        row.id: (row.sensor, row.kind)
        for row in connection.execute(
            select(datastreams.c.id, datastreams.c.kind, sensors.c.id.label("sensor"))
            .join(sensors, sensors.c.pk == datastreams.c.sensor_pk)
            .where(datastreams.c.id.in_(sorted(streams)))
        )
    }
    kinds = {kind for _, kind in owners.values()}
    active = connection.execute(select(rules).where(rules.c.kind.in_(sorted(kinds)))).all()
    if not active:
        return []
    by_stream: dict[int, list[Reading]] = defaultdict(list)
    for reading in stored:
        by_stream[reading.datastream_id].append(reading)
    changes: list[AlertChange] = []
    for stream, readings in by_stream.items():
        sensor_id, kind = owners[stream]
        for rule in active:
            if rule.kind != kind or (rule.sensor_id is not None and rule.sensor_id != sensor_id):
                continue
            changes.extend(
                _run(connection, rule, sensor_id, stream, sorted(readings, key=lambda r: r.time))
            )
    return changes


def _run(
    connection: Connection, rule: Any, sensor_id: str, stream: int, readings: list[Reading]
) -> list[AlertChange]:
    key = (rule_states.c.rule_id == rule.id) & (rule_states.c.sensor_id == sensor_id)
    row = connection.execute(select(rule_states).where(key)).first()
    state: dict[str, Any] = (
        {
            "last_time": row.last_time,
            "breach_since": row.breach_since,
            "clear_since": row.clear_since,
            "alert_id": row.alert_id,
        }
        if row is not None
        else {"last_time": None, "breach_since": None, "clear_since": None, "alert_id": None}
    )
    changes = []
    for reading in readings:
        now = reading.time
        if state["last_time"] is not None and now <= state["last_time"]:
            continue
        state["last_time"] = now
        value = reading.value
        if rule.window_s > 0:
            value = _mean(connection, stream, now, rule.window_s, reading.value)
        beyond = value > rule.threshold if rule.above else value < rule.threshold
        back = value < rule.reset if rule.above else value > rule.reset
        if state["alert_id"] is None:
            state["breach_since"] = (state["breach_since"] or now) if beyond else None
            since = state["breach_since"]
            if since is not None and now - since >= timedelta(seconds=rule.open_after_s):
                alert_id = uuid.uuid4().hex
                connection.execute(
                    insert(alerts).values(
                        id=alert_id, rule_id=rule.id, sensor_id=sensor_id, kind=rule.kind,
                        status="open", value=value, opened_at=now,
                    )
                )  # fmt: skip
                state.update(alert_id=alert_id, breach_since=None, clear_since=None)
                changes.append(
                    AlertChange(alert_id, "open", rule.id, sensor_id, rule.kind, value, now)
                )
        else:
            state["clear_since"] = (state["clear_since"] or now) if back else None
            since = state["clear_since"]
            if since is not None and now - since >= timedelta(seconds=rule.resolve_after_s):
                connection.execute(
                    update(alerts)
                    .where(alerts.c.id == state["alert_id"])
                    .values(status="resolved", resolved_at=now)
                )
                changes.append(
                    AlertChange(
                        state["alert_id"], "resolved", rule.id, sensor_id, rule.kind, value, now
                    )
                )
                state.update(alert_id=None, breach_since=None, clear_since=None)
    if row is None:
        connection.execute(
            insert(rule_states).values(rule_id=rule.id, sensor_id=sensor_id, **state)
        )
    else:
        connection.execute(update(rule_states).where(key).values(**state))
    return changes


def _mean(
    connection: Connection, stream: int, now: datetime, window_s: int, latest: float
) -> float:
    """Mean of the datastream over the trailing window ending at ``now`` (inclusive); the window
    always holds the reading being evaluated, ``latest`` is only a guard."""
    value = connection.execute(
        select(func.avg(observations.c.value)).where(
            observations.c.datastream_id == stream,
            observations.c.time > now - timedelta(seconds=window_s),
            observations.c.time <= now,
        )
    ).scalar()
    return float(value) if value is not None else latest
