"""AlertService on SQLite and PostgreSQL: rules and acknowledgements through it, alerts opened
and resolved inside the observation transaction, events published once and only after the
commit, and a batch's rule work in a fixed number of queries."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text

from arserver.config import Settings
from arserver.domain import AlertChange
from arserver.services.alerts import AlertService
from arserver.services.observations import ObservationWriter
from arserver.store.database import open_database
from arserver.store.rules import lock_states
from arserver.store.schema import alerts, rule_states
from arserver.store.sensors import create_sensor
from tests.arserver.support import RecordingBus
from tests.support import wait_until

T0 = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)


def ids(prefix: str) -> Callable[[], str]:
    count = iter(range(1, 1000))
    return lambda: f"{prefix}{next(count)}"


def rule(window_s: int = 0, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "NO2", "kind": "no2", "sensor_id": None, "above": True, "threshold": 40.0,
        "reset": 35.0, "window_s": window_s, "open_after_s": 0, "resolve_after_s": 0,
        **overrides,
    }  # fmt: skip


def items(series: Sequence[tuple[int, float]], sensor: str = "air-1") -> list[dict[str, Any]]:
    return [
        {"sensor": sensor, "time": (T0 + timedelta(minutes=m)).isoformat(), "value": v}
        for m, v in series
    ]


def setup(engine: Engine) -> tuple[AlertService, ObservationWriter, RecordingBus]:
    for sensor in ("air-1", "air-2"):
        create_sensor(
            engine, {"id": sensor, "name": sensor, "lon": 4.9, "lat": 52.37}, [("no2", "ug/m3")]
        )
    create_sensor(engine, {"id": "van", "name": "mobile"}, [("no2", "ug/m3")])
    bus = RecordingBus(engine, alerts.c.status)
    service = AlertService(engine, bus, new_id=ids("a"))
    return service, ObservationWriter(engine, bus=bus, alerts=service), bus


def stored_alerts(engine: Engine) -> list[tuple[str, str, float]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(alerts.c.id, alerts.c.status, alerts.c.value).order_by(alerts.c.id)
        ).all()
    return [(r.id, r.status, r.value) for r in rows]


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def selects(statements: list[str]) -> int:
    """The SELECTs of a write (not counting the look the RecordingBus takes)."""
    return sum(
        1
        for s in statements
        if s.startswith("SELECT") and "FROM alerts" not in s and "pg_advisory" not in s
    )


def locks(statements: list[str]) -> int:
    """The statements of a write that lock rule states (PostgreSQL only)."""
    return sum(1 for s in statements if "pg_advisory_xact_lock" in s)


def test_add_rule_names_it_with_the_injected_ids(engine: Engine) -> None:
    service, _, bus = setup(engine)
    row = service.add_rule(rule(window_s=3600))
    assert (row["id"], row["kind"], row["window_s"], row["above"]) == ("a1", "no2", 3600, True)
    assert bus.batches == []  # rules are not on the live overlay


def test_alerts_from_readings_commit_with_them_and_ride_the_writers_one_publish(
    engine: Engine,
) -> None:
    service, writer, bus = setup(engine)
    service.add_rule(rule())  # id a1
    result = writer.write(items([(0, 50)]), now=NOW)
    assert result.alerts == [AlertChange("a2", "open", "a1", "air-1", "no2", 50.0, T0)]
    assert len(bus.batches) == 1  # one publish per batch: the reading and its alert
    assert [(c.layer, c.key, c.data.get("status")) for c in bus.batches[0]] == [
        ("sensors", "sensor:air-1:no2", None),
        ("alerts", "alert:a2", "open"),
    ]
    assert bus.committed == [["open"]]  # published after the commit
    writer.write(items([(5, 20)]), now=NOW)
    assert bus.batches[1][1].removed is True
    assert stored_alerts(engine) == [("a2", "resolved", 50.0)]


def test_an_alert_that_opens_and_resolves_in_one_batch_ends_resolved(engine: Engine) -> None:
    service, writer, _ = setup(engine)
    service.add_rule(rule())
    result = writer.write(items([(0, 50), (1, 20), (2, 60)]), now=NOW)
    assert [(a.alert_id, a.status) for a in result.alerts] == [
        ("a2", "open"), ("a2", "resolved"), ("a3", "open"),
    ]  # fmt: skip
    assert stored_alerts(engine) == [("a2", "resolved", 50.0), ("a3", "open", 60.0)]
    with engine.connect() as connection:
        state = connection.execute(select(rule_states)).one()
    assert (state.sensor_id, state.last_time, state.alert_id) == (
        "air-1",
        T0 + timedelta(minutes=2),
        "a3",
    )


def test_window_means_take_earlier_batches_and_the_batch_itself_in_a_fixed_query_count(
    engine: Engine,
) -> None:
    service, writer, _ = setup(engine)
    service.add_rule(rule(window_s=3600, resolve_after_s=1800))
    service.add_rule(rule(window_s=900, threshold=100, reset=90))
    writer.write(items([(0, 50)]), now=NOW)  # opens: the hourly mean is 50
    with counted(engine) as small:
        writer.write(items([(15, 50)]), now=NOW)
    series = [(m, 20.0) for m in range(60, 121, 15)]  # means 42.5, 35, 27.5, 20, 20
    with counted(engine) as large:
        result = writer.write(items(series + [(30, 50), (45, 50)]), now=NOW)
    # No query per reading: the same reads (datastreams, rules, window, states) as for one
    # reading, and one more write (the resolved alert).
    assert selects(large) == selects(small) == 4
    assert locks(large) == locks(small) == (1 if engine.dialect.name == "postgresql" else 0)
    assert len(large) == len(small) + 1
    assert [(a.status, a.value, a.time) for a in result.alerts] == [
        ("resolved", 20.0, T0 + timedelta(minutes=120))
    ]


def test_acknowledge_persists_then_publishes_once(engine: Engine) -> None:
    service, writer, bus = setup(engine)
    service.add_rule(rule())
    writer.write(items([(0, 50)]), now=NOW)
    writer.write(items([(0, 50)], sensor="van"), now=NOW)  # a mobile sensor with no position
    bus.batches.clear()
    bus.committed.clear()
    alert = service.acknowledge("a2", "inspector")
    assert alert is not None
    assert (alert["status"], alert["acknowledged_by"]) == ("acknowledged", "inspector")
    assert "lon" not in alert
    [[change]] = bus.batches
    assert (change.key, change.data["status"], change.removed) == (
        "alert:a2",
        "acknowledged",
        False,
    )
    assert (change.lon, change.lat) == (4.9, 52.37)
    assert [sorted(c) for c in bus.committed] == [["acknowledged", "open"]]  # after the commit
    # Nothing changes, nothing is published: again, unknown, or no location to show it at.
    assert service.acknowledge("a2", "someone else") == alert
    assert service.acknowledge("nope", "inspector") is None
    van = service.acknowledge("a3", "inspector")
    assert van is not None
    assert van["status"] == "acknowledged"
    assert len(bus.batches) == 1
    # An acknowledged alert still resolves.
    writer.write(items([(5, 20)]), now=NOW)
    assert stored_alerts(engine)[0] == ("a2", "resolved", 50.0)  # the value it opened with


class PausingAlerts(AlertService):
    """An AlertService whose first evaluation waits, inside its transaction, until released:
    a batch caught between reading the rule states and committing."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, None, new_id=ids("p"))
        self.reached = threading.Event()
        self.release = threading.Event()

    def evaluate(self, connection: Any, stored: Sequence[Any], info: Any) -> list[AlertChange]:
        transitions = super().evaluate(connection, stored, info)
        if not self.reached.is_set():
            self.reached.set()
            assert self.release.wait(30), "the test never released the first batch"
        return transitions


def waiting_for_a_lock(engine: Engine) -> bool:
    """Whether some transaction of this database waits for a lock (PostgreSQL)."""
    with engine.connect() as connection:
        query = (
            "SELECT count(*) FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid"
            " WHERE NOT l.granted AND a.datname = current_database()"
        )
        return bool(connection.execute(text(query)).scalar_one())


@pytest.fixture
def postgres_engine(postgres_url: str, tmp_path: Path) -> Iterator[Engine]:
    """A migrated PostgreSQL database (SQLite has one writer, so batches never overlap)."""
    opened = open_database(Settings(data_dir=tmp_path, database_url=postgres_url))
    yield opened
    opened.dispose()


def test_concurrent_batches_of_one_sensor_open_one_alert(postgres_engine: Engine) -> None:
    engine = postgres_engine
    setup(engine)
    AlertService(engine).add_rule(rule())
    service = PausingAlerts(engine)
    first = ObservationWriter(engine, alerts=service)
    second = ObservationWriter(engine, alerts=AlertService(engine, new_id=ids("q")))
    results: dict[str, Any] = {}

    def write(name: str, writer: ObservationWriter, minute: int) -> None:
        try:
            results[name] = writer.write(items([(minute, 50.0)]), now=NOW)
        except Exception as exc:
            results[name] = exc

    one = threading.Thread(target=write, args=("first", first, 0))
    one.start()
    assert service.reached.wait(30)  # the first batch has seen no state and opened an alert
    two = threading.Thread(target=write, args=("second", second, 1))
    two.start()
    # The second batch waits for the first: for the rule states' lock before it reads them
    # (without that lock it would read no state, then wait for the ingest counters' row, and
    # open a second alert once the first commits).
    wait_until(lambda: waiting_for_a_lock(engine) or not two.is_alive(), 30, "the second batch")
    service.release.set()
    one.join(30)
    two.join(30)
    assert not isinstance(results.get("first"), Exception), results
    assert not isinstance(results.get("second"), Exception), results
    assert [status for _, status, _ in stored_alerts(engine)] == ["open"]


#: Two sensor ids whose ``hashtext`` collides (found with ``generate_series``; the test checks
#: it still holds), and two ids that sort between them in any collation.
COLLIDING = ("s125987", "s223039")
BETWEEN = ("s125988", "s125989")


def advisory_waiters(engine: Engine) -> int:
    """How many transactions of this database wait for an advisory lock."""
    query = (
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    with engine.connect() as connection:
        return int(connection.execute(text(query)).scalar_one())


def test_batches_whose_sensor_ids_share_a_lock_hash_do_not_deadlock(
    postgres_engine: Engine,
) -> None:
    """Ids a < m < b < c with hashtext(a) == hashtext(c): a batch of {a, m, b} and one of
    {b, c} must take the shared lock in the same order as every other."""
    engine = postgres_engine
    a, c = COLLIDING
    m, b = BETWEEN
    with engine.connect() as connection:
        hashes = connection.execute(
            text("SELECT hashtext(:a), hashtext(:m), hashtext(:b), hashtext(:c)"),
            {"a": a, "m": m, "b": b, "c": c},
        ).one()
    assert hashes[0] == hashes[3], "the ids no longer collide"
    assert len(set(hashes)) == 3
    results: dict[str, Exception | None] = {}

    def batch(name: str, sensor_ids: list[str]) -> None:
        try:
            with engine.begin() as connection:
                lock_states(connection, sensor_ids)
            results[name] = None
        except Exception as exc:  # a deadlock PostgreSQL broke up
            results[name] = exc

    with engine.connect() as gate:
        transaction = gate.begin()
        lock_states(gate, [m])  # holds the first batch halfway through its locks
        first = threading.Thread(target=batch, args=("first", [a, m, b]))
        first.start()
        wait_until(lambda: advisory_waiters(engine) >= 1, 30, "the first batch waiting")
        second = threading.Thread(target=batch, args=("second", [b, c]))
        second.start()
        wait_until(
            lambda: advisory_waiters(engine) >= 2 or not second.is_alive(),
            30,
            "the second batch waiting or done",
        )
        transaction.rollback()
    first.join(30)
    second.join(30)
    assert results == {"first": None, "second": None}
