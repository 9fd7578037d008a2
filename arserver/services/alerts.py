"""The write path for rules and alerts: rules added, alerts opened and resolved by the rules
(inside the observation transaction), alerts acknowledged by people.

:class:`AlertService` is the only code that writes rules, rule states and alerts, and the only
code that makes their change events. Alerts that readings open or resolve are announced in the
:class:`~arserver.services.observations.ObservationWriter`'s one publish per batch (the
events come from :meth:`AlertService.changes`): one bus call (one Redis entry) per batch, and a
hub sees an alert together with the reading that caused it. Acknowledgements, which this
service commits itself, it publishes itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from arserver.domain import AlertChange, Change, Position, Reading, StreamInfo, alert_change
from arserver.insight.rules import Point, Rule, RuleState, Series, run
from arserver.live.bus import Bus
from arserver.store import alerts as alert_rows
from arserver.store import rules as rule_rows
from arserver.store.alerts import AlertRow
from arserver.store.rules import RuleRow


def _new_id() -> str:
    return uuid.uuid4().hex


class AlertService:
    """Rules and alerts of one database.

    ``bus``: where acknowledgements go once committed (None: nowhere). ``new_id``: names new
    rules and alerts (default: random UUIDs as 32 hex digits).
    """

    def __init__(
        self, engine: Engine, bus: Bus | None = None, *, new_id: Callable[[], str] = _new_id
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.new_id = new_id

    # Rules -------------------------------------------------------------------------------

    def add_rule(self, values: Mapping[str, Any]) -> RuleRow:
        """Store a rule (the columns of ``rules`` but id and created_at); returns its row. Rules
        are not on the live overlay: nothing is published."""
        with self.engine.begin() as connection:
            return rule_rows.create_rule(connection, self.new_id(), values, datetime.now(UTC))

    # Alerts from readings (inside the observation transaction) ---------------------------

    def evaluate(
        self, connection: Connection, stored: Sequence[Reading], info: Mapping[int, StreamInfo]
    ) -> list[AlertChange]:
        """Run the rules over newly stored readings (``info``: their datastreams) inside the
        caller's transaction, after the readings were stored (window means include them): store
        the rules' new states and the alerts they open or resolve; returns those transitions.

        Reads the rules of the batch's kinds, their states, and for windowed rules the
        observations each datastream's windows span, in one query each; the watched sensors'
        states are locked first, so concurrent batches of one sensor take turns."""
        if not stored:
            return []
        kinds = {info[r.datastream_id].kind for r in stored}
        rules = [Rule.from_row(row) for row in rule_rows.rules_of_kinds(connection, kinds)]
        if not rules:
            return []
        rule_rows.lock_states(
            connection,
            {
                about.sensor_id
                for about in (info[r.datastream_id] for r in stored)
                if any(rule.watches(about.sensor_id, about.kind) for rule in rules)
            },
        )
        series = _points(connection, rules, stored, info)
        states = {
            key: RuleState(**row)
            for key, row in rule_rows.states_of(
                connection, {r.id for r in rules}, {sensor for sensor, _ in series}
            ).items()
        }
        outcome = run(rules, series, states, self.new_id)
        rule_rows.save_states(
            connection,
            {
                key: asdict(state)
                for key, state in outcome.states.items()
                if states.get(key) != state
            },
        )
        self.record(connection, outcome.transitions)
        return outcome.transitions

    def record(self, connection: Connection, transitions: Sequence[AlertChange]) -> None:
        """Store alert transitions in the caller's transaction: open ones first, so that an
        alert that opens and resolves in one batch ends resolved."""
        alert_rows.open_alerts(
            connection,
            [
                {"id": t.alert_id, "rule_id": t.rule_id, "sensor_id": t.sensor_id,
                 "kind": t.kind, "value": t.value, "opened_at": t.time}
                for t in transitions
                if t.status == "open"
            ],
        )  # fmt: skip
        alert_rows.resolve_alerts(
            connection, [(t.alert_id, t.time) for t in transitions if t.status == "resolved"]
        )

    def changes(
        self, transitions: Sequence[AlertChange], where: Mapping[str, Position]
    ) -> list[Change]:
        """The live events of committed transitions, placed where their sensor is (``where``:
        {sensor id: position}); a sensor with no known position is left out. For the caller's
        publish after its commit."""
        return [
            alert_change(
                t.alert_id, t.status, t.rule_id, t.sensor_id, t.kind, t.value, t.time,
                where[t.sensor_id],
            )
            for t in transitions
            if t.sensor_id in where
        ]  # fmt: skip

    # Alerts from people ------------------------------------------------------------------

    def acknowledge(self, alert_id: str, by: str) -> AlertRow | None:
        """Mark an open alert acknowledged by ``by``, then announce it (when its sensor has a
        location); returns the alert, None if there is no such alert. Acknowledging an
        acknowledged or resolved alert changes nothing and announces nothing."""
        moment = datetime.now(UTC)
        with self.engine.begin() as connection:
            changed = alert_rows.acknowledge(connection, alert_id, by, moment)
            found = alert_rows.alert_at(connection, alert_id)
        if found is None:
            return None
        alert, position = found
        if changed and position is not None and self.bus is not None:
            self.bus.publish(  # after the commit; a bus never fails the write
                [
                    alert_change(
                        alert["id"], alert["status"], alert["rule_id"], alert["sensor_id"],
                        alert["kind"], alert["value"], moment, position,
                    )
                ]
            )  # fmt: skip
        return alert


def _points(
    connection: Connection,
    rules: Sequence[Rule],
    stored: Sequence[Reading],
    info: Mapping[int, StreamInfo],
) -> dict[tuple[str, str], list[Point]]:
    """The readings of each watched datastream as the rules see them ({(sensor id, kind):
    points}, in the order the datastreams come in the batch), with the trailing means of its
    windowed rules, computed from one query over the span the windows cover."""
    by_stream: dict[int, list[Reading]] = {}
    for reading in stored:
        by_stream.setdefault(reading.datastream_id, []).append(reading)
    windows: dict[int, set[int]] = {}  # watched datastream -> its rules' window lengths
    for stream in by_stream:
        about = info[stream]
        watching = [r for r in rules if r.watches(about.sensor_id, about.kind)]
        if watching:
            windows[stream] = {r.window_s for r in watching if r.window_s > 0}
    spans = {
        stream: (
            min(r.time for r in by_stream[stream]) - timedelta(seconds=max(lengths)),
            max(r.time for r in by_stream[stream]),
        )
        for stream, lengths in windows.items()
        if lengths
    }
    observed = rule_rows.window_observations(connection, spans)
    series: dict[tuple[str, str], list[Point]] = {}
    for stream, lengths in windows.items():
        data = Series(*observed.get(stream, ([], [])))
        points = []
        for reading in by_stream[stream]:
            means = {}
            for length in lengths:
                mean = data.mean(reading.time, length)
                if mean is not None:
                    means[length] = mean
            points.append(Point(reading.time, reading.value, means))
        series[(info[stream].sensor_id, info[stream].kind)] = points
    return series
