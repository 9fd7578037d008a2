"""Threshold rules and their per-sensor state: the SQL behind
:class:`~arserver.services.alerts.AlertService` and the rules' listing.

Rows are plain dicts; the rule engine's types (:mod:`arserver.insight.rules`) are built from them
by the service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypedDict, cast

from sqlalchemy import Connection, Engine, and_, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite

from arserver.store.schema import observations, rule_states, rules

#: The columns of a rule's state besides its key (rule_id, sensor_id).
STATE_COLUMNS = ("last_time", "breach_since", "clear_since", "alert_id")


class RuleRow(TypedDict):
    """A threshold rule as stored (see :class:`arserver.insight.rules.Rule` for its meaning):
    ``above`` False means a "below" rule; ``window_s`` 0 means the raw value."""

    id: str
    name: str
    kind: str
    sensor_id: str | None
    above: bool
    threshold: float
    reset: float
    window_s: int
    open_after_s: int
    resolve_after_s: int
    created_at: datetime


def create_rule(
    connection: Connection, rule_id: str, values: Mapping[str, Any], created_at: datetime
) -> RuleRow:
    """Insert a rule; returns its row."""
    connection.execute(rules.insert().values(id=rule_id, created_at=created_at, **values))
    row = connection.execute(select(rules).where(rules.c.id == rule_id)).one()
    return cast(RuleRow, dict(row._mapping))


def list_rules(engine: Engine) -> list[RuleRow]:
    """Every rule, oldest first."""
    query = select(rules).order_by(rules.c.created_at, rules.c.id)
    with engine.connect() as connection:
        return [cast(RuleRow, dict(r._mapping)) for r in connection.execute(query)]


def rules_of_kinds(connection: Connection, kinds: Iterable[str]) -> list[RuleRow]:
    """The rules that watch any of ``kinds``, oldest first, in one query."""
    query = (
        select(rules)
        .where(rules.c.kind.in_(sorted(kinds)))
        .order_by(rules.c.created_at, rules.c.id)
    )
    return [cast(RuleRow, dict(r._mapping)) for r in connection.execute(query)]


#: The first key of the advisory locks on rule states (the second is the sensor id's hash).
_STATE_LOCKS = 0x52554C45  # "RULE"


def lock_states(connection: Connection, sensor_ids: Iterable[str]) -> None:
    """Hold the rule states of ``sensor_ids`` until the caller's transaction ends, so that
    concurrent batches of one sensor see each other's states (and one breach opens one alert).
    PostgreSQL: one transaction-level advisory lock per distinct ``hashtext`` of the ids,
    taken in ascending order of that hash, so that every batch takes the locks themselves in
    one order (no deadlock between two batches, even when two ids share a hash: they then
    share a lock, which only serialises their batches); SQLite needs none, its writer already
    holds the database's write lock."""
    keys = sorted(set(sensor_ids))
    if not keys or connection.dialect.name != "postgresql":
        return
    # A subquery with ORDER BY is not flattened: the locks are taken in its order.
    connection.execute(
        text(
            "SELECT pg_advisory_xact_lock(:space, h) FROM"
            " (SELECT DISTINCT hashtext(k) AS h FROM unnest(CAST(:keys AS text[])) AS k"
            " ORDER BY h) AS sorted"
        ),
        {"space": _STATE_LOCKS, "keys": keys},
    )


def states_of(
    connection: Connection, rule_ids: Iterable[str], sensor_ids: Iterable[str]
) -> dict[tuple[str, str], dict[str, Any]]:
    """{(rule id, sensor id): {last_time, breach_since, clear_since, alert_id}} of the given rules
    and sensors that have a state, in one query."""
    query = select(rule_states).where(
        rule_states.c.rule_id.in_(sorted(rule_ids)), rule_states.c.sensor_id.in_(sorted(sensor_ids))
    )
    return {
        (row.rule_id, row.sensor_id): {name: getattr(row, name) for name in STATE_COLUMNS}
        for row in connection.execute(query)
    }


def save_states(
    connection: Connection, states: Mapping[tuple[str, str], Mapping[str, Any]]
) -> None:
    """Insert or replace rule states ({(rule id, sensor id): the STATE_COLUMNS}) in one
    statement."""
    if not states:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(rule_states)
    statement = statement.on_conflict_do_update(
        index_elements=["rule_id", "sensor_id"],
        set_={name: statement.excluded[name] for name in STATE_COLUMNS},
    )
    connection.execute(
        statement,
        [
            {"rule_id": rule_id, "sensor_id": sensor_id, **{n: state[n] for n in STATE_COLUMNS}}
            for (rule_id, sensor_id), state in states.items()
        ],
    )


def window_observations(
    connection: Connection, spans: Mapping[int, tuple[datetime, datetime]]
) -> dict[int, tuple[list[datetime], list[float]]]:
    """{datastream id: (times ascending, values)} of the observations stored in each
    datastream's span ``(start, end]``, in one query."""
    if not spans:
        return {}
    o = observations.c
    query = (
        select(o.datastream_id, o.time, o.value)
        .where(
            or_(
                *(
                    and_(o.datastream_id == stream, o.time > start, o.time <= end)
                    for stream, (start, end) in sorted(spans.items())
                )
            )
        )
        .order_by(o.datastream_id, o.time)
    )
    series: dict[int, tuple[list[datetime], list[float]]] = {}
    for stream, time, value in connection.execute(query):
        times, values = series.setdefault(stream, ([], []))
        times.append(time)
        values.append(float(value))
    return series
