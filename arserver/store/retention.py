"""Retention: raw observations for a while, hourly aggregates for longer.

``apply_retention`` rolls raw readings older than the raw window up into ``observation_hours``
(count, sum, min, max per datastream and UTC hour, merged with what an earlier run stored) and
deletes them, in one transaction; then it deletes aggregates older than their own window. The
roll-up and the delete see the same snapshot (REPEATABLE READ on PostgreSQL; SQLite has one
writer), so a reading committed meanwhile is neither lost nor counted twice. Running it twice,
or from several processes, is safe.

Personal data has its own, shorter windows: one :class:`PersonalData` entry per kind in
``PERSONAL_DATA`` (its setting and one purge function), applied by ``apply_personal_retention``,
each kind in its own transaction. Positions of raw observations (they locate whoever carries a
mobile sensor) are set to NULL after ``mobile_retention_days`` and the value is kept: the row
stays, so it is rolled up once, at the raw window, and a re-sent reading stays a duplicate,
where deleting it early would let it in again and count it twice in its hour.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from arserver.config import Settings
from arserver.domain import TOKEN_ACTOR_PREFIX
from arserver.store.alignments import delete_alignments_before
from arserver.store.audit import erase_actors, purge_before
from arserver.store.schema import (
    comments,
    inspection_photos,
    inspections,
    observation_hours,
    observations,
    parking_occupancy,
    rounds,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionResult:
    cutoff: datetime | None  # raw readings before this were rolled up
    rolled_up: int  # raw readings rolled up and deleted
    hours_deleted: int  # aggregates past their window
    parking_deleted: int = 0  # parking occupancy history rows past the aggregates' window


def apply_retention(
    engine: Engine,
    raw: timedelta | None,
    aggregates: timedelta | None,
    now: datetime | None = None,
) -> RetentionResult:
    """Roll up and delete raw readings older than ``raw`` (cut at a whole UTC hour, so no hour
    is split between raw and aggregate), then delete aggregates older than ``aggregates``, and
    the parking occupancy history too (it is an aggregate of bay and counter readings). None
    keeps that kind of data forever."""
    moment = now or datetime.now(UTC)
    cutoff = _hour(moment - raw) if raw is not None else None
    rolled = hours = parked = 0
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            if connection.dialect.name == "postgresql":  # one retention run at a time
                connection.execute(text("SELECT pg_advisory_xact_lock(7415)"))
            if cutoff is not None:
                rolled = _roll_up(connection, cutoff)
            if aggregates is not None:
                hours = connection.execute(
                    delete(observation_hours).where(
                        observation_hours.c.start < _hour(moment - aggregates)
                    )
                ).rowcount
                parked = connection.execute(
                    delete(parking_occupancy).where(parking_occupancy.c.time < moment - aggregates)
                ).rowcount
    return RetentionResult(cutoff, rolled, hours, parked)


@dataclass(frozen=True)
class PersonalData:
    """One kind of personal data with its own window: ``window`` reads it from the settings
    (None: no window of its own), ``purge`` removes what is older than the cutoff on an open
    transaction and returns how many rows it changed; running it twice changes nothing."""

    name: str
    window: Callable[[Settings], timedelta | None]
    purge: Callable[[Connection, datetime], int]


def strip_positions(connection: Connection, cutoff: datetime) -> int:
    """Set ``lon``, ``lat`` and ``h`` of raw observations measured before ``cutoff`` to NULL;
    times and values stay (and still count in their hour). A stored position always has a
    ``lon`` (the writer takes [lon, lat] or [lon, lat, h]), so the partial index
    ``observations_positioned`` finds exactly the rows to change."""
    o = observations.c
    changed: int = connection.execute(
        update(observations)
        .where(o.time < cutoff, o.lon.is_not(None))
        .values(lon=None, lat=None, h=None)
    ).rowcount
    return changed


def delete_closed_photos(connection: Connection, cutoff: datetime) -> int:
    """Delete the photos of inspections resolved or rejected before ``cutoff`` (the inspection
    and its history stay; a reopened inspection has no ``closed_at`` and keeps its photos)."""
    closed = select(inspections.c.id).where(inspections.c.closed_at < cutoff)
    deleted: int = connection.execute(
        delete(inspection_photos).where(inspection_photos.c.inspection_id.in_(closed))
    ).rowcount
    return deleted


def unlink_residents(connection: Connection, cutoff: datetime) -> int:
    """Clear the author (the link to a resident's token) of residents' comments in rounds that
    ended before ``cutoff``, and the resident tokens as actors of their audit entries (which
    name the comments they wrote); the pseudonym and the text stay for the round's record.
    Returns how many comments were unlinked."""
    linked = (
        comments.c.author_kind == "resident",
        comments.c.author.is_not(None),
        comments.c.round_id.in_(select(rounds.c.id).where(rounds.c.ends_at < cutoff)),
    )
    authors = connection.execute(select(comments.c.author).where(*linked).distinct()).scalars()
    tokens = [
        a.removeprefix(TOKEN_ACTOR_PREFIX) for a in authors if a.startswith(TOKEN_ACTOR_PREFIX)
    ]
    changed: int = connection.execute(update(comments).where(*linked).values(author=None)).rowcount
    erase_actors(connection, tokens)
    return changed


#: Every kind of personal data with a window of its own, in the order they are purged.
PERSONAL_DATA: tuple[PersonalData, ...] = (
    PersonalData("positions of raw observations", lambda s: s.mobile_retention, strip_positions),
    PersonalData("audit log entries", lambda s: s.audit_retention, purge_before),
    PersonalData("photos of closed inspections", lambda s: s.photo_retention, delete_closed_photos),
    PersonalData(
        "residents' links to their comments", lambda s: s.resident_retention, unlink_residents
    ),
    PersonalData("alignments", lambda s: s.alignment_lifetime, delete_alignments_before),
)


def apply_personal_retention(
    engine: Engine, settings: Settings, now: datetime | None = None
) -> dict[str, int]:
    """Purge each kind in ``PERSONAL_DATA`` older than its window (each in its own
    transaction); {kind name: rows changed} for the kinds that have a window."""
    moment = now or datetime.now(UTC)
    changed: dict[str, int] = {}
    for kind in PERSONAL_DATA:
        window = kind.window(settings)
        if window is None:
            continue
        with engine.begin() as connection:
            changed[kind.name] = kind.purge(connection, moment - window)
    return changed


def run_retention(engine: Engine, settings: Settings, stop: threading.Event) -> None:
    """Apply retention now and every ``settings.retention_interval_s`` until ``stop``; a failed
    run is logged and tried again next time."""
    while not stop.is_set():
        try:
            result = apply_retention(engine, settings.raw_retention, settings.aggregate_retention)
            if result.rolled_up or result.hours_deleted:
                log.info(
                    "retention: %d raw readings rolled up, %d hourly aggregates deleted",
                    result.rolled_up,
                    result.hours_deleted,
                )
            for name, count in apply_personal_retention(engine, settings).items():
                if count:
                    log.info("retention: %s: %d rows purged", name, count)
        except SQLAlchemyError:
            log.exception("retention failed; trying again in %.0f s", settings.retention_interval_s)
        stop.wait(settings.retention_interval_s)


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _roll_up(connection: Connection, cutoff: datetime) -> int:
    old = observations.c.time < cutoff
    on_postgresql = connection.dialect.name == "postgresql"
    if on_postgresql:
        hour = func.date_trunc("hour", observations.c.time, "UTC")
    else:  # the text form SQLAlchemy stores, truncated to the hour
        hour = func.strftime("%Y-%m-%d %H:00:00.000000", observations.c.time)
    grouped = (
        select(
            observations.c.datastream_id, hour, func.count(), func.sum(observations.c.value),
            func.min(observations.c.value), func.max(observations.c.value),
        )
        .where(old)
        .group_by(observations.c.datastream_id, hour)
    )  # fmt: skip
    insert = postgresql.insert if on_postgresql else sqlite.insert
    statement = insert(observation_hours).from_select(
        ["datastream_id", "start", "count", "sum", "min", "max"], grouped
    )
    excluded = statement.excluded
    h = observation_hours.c
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["datastream_id", "start"],
            set_={
                "count": h.count + excluded.count,
                "sum": h.sum + excluded.sum,
                # two-argument min/max are least/greatest in SQLite
                "min": (func.least if on_postgresql else func.min)(h.min, excluded.min),
                "max": (func.greatest if on_postgresql else func.max)(h.max, excluded.max),
            },
        )
    )
    deleted: int = connection.execute(delete(observations).where(old)).rowcount
    return deleted
