"""Retention on SQLite and PostgreSQL: raw readings past their window become hourly aggregates
that time buckets still count; late and repeated runs neither lose nor double-count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select

from arserver.cli import cli
from arserver.services.observations import ObservationWriter
from arserver.store.retention import apply_retention
from arserver.store.schema import observation_hours, observations
from arserver.store.sensors import buckets, create_sensor, history

DAY_START = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
LATER = datetime(2026, 1, 2, 11, 30, tzinfo=UTC)  # one day on: 10:xx of Jan 1 is past a day


def three_hours(engine: Engine) -> ObservationWriter:
    """A sensor with a reading every 10 minutes from 10:00 to 12:50; value = minutes since
    10:00 (so the hourly means are 25, 85 and 145)."""
    create_sensor(engine, {"id": "no2-1", "name": "NO2"}, [("no2", "ug/m3")])
    writer = ObservationWriter(engine)
    items = [
        {"sensor": "no2-1", "time": (DAY_START + timedelta(minutes=m)).isoformat(), "value": m}
        for m in range(0, 180, 10)
    ]
    assert writer.write(items, now=LATER).accepted == 18
    return writer


def hours(engine: Engine) -> list[tuple[int, float]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(observation_hours.c.count, observation_hours.c.sum).order_by(
                observation_hours.c.start
            )
        ).all()
    return [(int(r[0]), float(r[1])) for r in rows]


def raw_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(observations)).scalar_one())


def test_expired_readings_become_hourly_aggregates_that_buckets_still_count(
    engine: Engine,
) -> None:
    three_hours(engine)
    result = apply_retention(engine, raw=timedelta(days=1), aggregates=None, now=LATER)
    assert result.cutoff == datetime(2026, 1, 1, 11, 0, tzinfo=UTC)
    assert result.rolled_up == 6
    assert raw_count(engine) == 12
    assert hours(engine) == [(6, 150.0)]
    hourly = buckets(engine, "no2-1", None, 3600, None, None)
    assert [(b["count"], b["mean"], b["min"], b["max"]) for b in hourly] == [
        (6, 25.0, 0.0, 50.0),
        (6, 85.0, 60.0, 110.0),
        (6, 145.0, 120.0, 170.0),
    ]
    daily = buckets(engine, "no2-1", None, 86400, None, None)
    assert [(b["count"], b["mean"]) for b in daily] == [(18, 85.0)]
    # minute buckets exist only where raw readings are kept
    quarter = buckets(engine, "no2-1", None, 900, None, None)
    assert quarter[0]["start"] == "2026-01-01T11:00:00+00:00"
    assert len(history(engine, "no2-1", None, None, None, 100)) == 12


def test_running_again_changes_nothing_and_a_late_reading_is_merged(engine: Engine) -> None:
    three_hours(engine)
    apply_retention(engine, raw=timedelta(days=1), aggregates=None, now=LATER)
    again = apply_retention(engine, raw=timedelta(days=1), aggregates=None, now=LATER)
    assert again.rolled_up == 0
    assert hours(engine) == [(6, 150.0)]
    # A reading for the rolled-up hour, written by a writer that keeps raw data forever.
    late = {"sensor": "no2-1", "time": "2026-01-01T10:05:00+00:00", "value": 400.0}
    assert ObservationWriter(engine).write([late], now=LATER).accepted == 1
    apply_retention(engine, raw=timedelta(days=1), aggregates=None, now=LATER)
    assert hours(engine) == [(7, 550.0)]
    first = buckets(engine, "no2-1", None, 3600, None, None)[0]
    assert (first["count"], first["min"], first["max"]) == (7, 0.0, 400.0)


def test_aggregates_past_their_own_window_are_deleted(engine: Engine) -> None:
    three_hours(engine)
    apply_retention(engine, raw=timedelta(days=1), aggregates=None, now=LATER)
    result = apply_retention(
        engine, raw=timedelta(days=1), aggregates=timedelta(hours=12), now=LATER
    )
    assert result.hours_deleted == 1
    assert hours(engine) == []
    assert buckets(engine, "no2-1", None, 3600, None, None)[0]["start"].startswith(
        "2026-01-01T11:00"
    )


def test_readings_older_than_the_raw_window_are_refused(engine: Engine) -> None:
    create_sensor(engine, {"id": "no2-1", "name": "NO2"}, [("no2", "ug/m3")])
    writer = ObservationWriter(engine, raw_retention=timedelta(days=1))
    result = writer.write(
        [
            {"sensor": "no2-1", "time": "2026-01-01T10:00:00Z", "value": 30.0},
            {"sensor": "no2-1", "time": "2026-01-02T10:00:00Z", "value": 31.0},
        ],
        now=LATER,
    )
    assert result.accepted == 1
    assert [(r.index, r.cause) for r in result.rejected] == [(0, "too_old")]


def test_one_instant_with_different_offsets_is_one_reading(engine: Engine) -> None:
    create_sensor(engine, {"id": "no2-1", "name": "NO2"}, [("no2", "ug/m3")])
    writer = ObservationWriter(engine)
    june = datetime(2026, 6, 2, tzinfo=UTC)
    first = writer.write(
        [{"sensor": "no2-1", "time": "2026-06-01T12:00:00+02:00", "value": 30.0}], now=june
    )
    again = writer.write(
        [{"sensor": "no2-1", "time": "2026-06-01T10:00:00Z", "value": 30.0}], now=june
    )
    assert (first.accepted, again.duplicate) == (1, 1)
    stored = history(engine, "no2-1", None, None, None, 10)
    assert [s["time"] for s in stored] == ["2026-06-01T10:00:00+00:00"]
    window = history(engine, "no2-1", None, datetime(2026, 6, 1, 11, 30, tzinfo=UTC), None, 10)
    assert window == []


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_the_retention_command_reports_what_it_did(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_sensor(engine, {"id": "no2-1", "name": "NO2"}, [("no2", "ug/m3")])
    old = (datetime.now(UTC) - timedelta(days=100)).isoformat()
    moved = (datetime.now(UTC) - timedelta(days=40)).isoformat()  # past the 30 days of positions
    items = [
        {"sensor": "no2-1", "time": old, "value": 1},
        {"sensor": "no2-1", "time": moved, "value": 2, "position": [4.9, 52.37, 1.0]},
    ]
    assert ObservationWriter(engine).write(items).accepted == 2
    monkeypatch.setenv("ARSERVER_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["retention"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1 raw observations before ")
    assert "1 positions of raw observations past their retention purged" in result.output
    assert hours(engine) == [(1, 1.0)]
    (kept,) = history(engine, "no2-1", None, None, None, 10)
    assert kept["value"] == 2
    assert "position" not in kept
