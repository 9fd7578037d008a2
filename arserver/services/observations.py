"""The write path for observations: check, store, run the rules (one transaction, committed
before the reply), count, then tell the live hub.

``ObservationWriter`` is the only code that stores observations; the HTTP API, the MQTT consumer
and the tests all go through it. The alerts the rules open or resolve are written by its
:class:`~arserver.services.alerts.AlertService` in the same transaction, and their events go out
in the writer's one publish per batch (one bus call per batch is cheaper than one per kind).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from arserver.domain import (
    AlertChange,
    Change,
    Position,
    Reading,
    Rejection,
    StreamInfo,
    observation_change,
)
from arserver.live.bus import Bus
from arserver.services.alerts import AlertService
from arserver.services.checks import check, storable_text
from arserver.services.parking import BAY_KIND, COUNTER_KIND, ParkingService
from arserver.store.sensors import count_causes, store_readings, streams_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicate: int
    rejected: list[Rejection]
    alerts: list[AlertChange] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)


class ObservationWriter:
    """Stores batches of observation items (the ``POST /api/v1/observations`` item shape).

    ``raw_retention``: readings older than this are refused (``too_old``), because retention
    would delete them at once. ``bus``: where committed changes go (none: nowhere). ``alerts``:
    the rules and alerts of the same database (default: a service of ``engine`` with no bus of
    its own, since the writer publishes the alert events it makes). ``parking``: told which
    bay sensors and car-park counters got readings, after the commit, to publish the occupancy
    of their places.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        raw_retention: timedelta | None = None,
        bus: Bus | None = None,
        alerts: AlertService | None = None,
        parking: ParkingService | None = None,
    ) -> None:
        self.engine = engine
        self.raw_retention = raw_retention
        self.bus = bus
        self.alerts = alerts if alerts is not None else AlertService(engine)
        self.parking = parking

    def write(
        self,
        items: list[Any],
        now: datetime | None = None,
        *,
        counted: Counter[str] | None = None,
    ) -> IngestResult:
        """Store a batch in one transaction; duplicates (same sensor, kind and time) are counted,
        not stored again. ``counted``: causes the caller found before (a malformed MQTT message)
        to add to the ingest counters in the same transaction. Returns after the commit, so an
        acknowledged reading survives a crash; the change events are published after it."""
        moment = now or datetime.now(UTC)
        oldest = moment - self.raw_retention if self.raw_retention is not None else None
        with self.engine.begin() as connection:
            # Only ids a database can compare (text without NUL or lone surrogates); the
            # check rejects the others as malformed.
            wanted = {
                i["sensor"]
                for i in items
                if isinstance(i, dict)
                and isinstance(i.get("sensor"), str)
                and storable_text(i["sensor"])
            }
            streams, info = streams_of(connection, wanted)
            readings, rejected = check(items, streams, moment, oldest)
            stored = store_readings(connection, readings)
            # The rules see the batch in the same transaction; the alerts commit with it.
            alerts = self.alerts.evaluate(connection, stored, info)
            causes = Counter(r.cause for r in rejected) + (counted or Counter())
            causes["accepted"] += len(stored)
            causes["duplicate"] += len(readings) - len(stored)
            count_causes(connection, +causes)
        changes, where = observation_changes(stored, info)
        changes += self.alerts.changes(alerts, where)
        if self.bus is not None and changes:
            self.bus.publish(changes)  # after the commit; a bus never fails the write
        if self.parking is not None:
            parked = {
                info[r.datastream_id].sensor_id
                for r in stored
                if info[r.datastream_id].kind in (BAY_KIND, COUNTER_KIND)
            }
            try:
                self.parking.observed(parked)
            except Exception:  # the readings are committed; the next refresh catches up
                log.exception("parking occupancy after %d readings failed", len(parked))
        return IngestResult(len(stored), len(readings) - len(stored), rejected, alerts, changes)


def observation_changes(
    stored: Sequence[Reading], info: dict[int, StreamInfo]
) -> tuple[list[Change], dict[str, Position]]:
    """One change per datastream (its newest reading in the batch), and where each sensor is
    (for placing its alerts). Things with no known position (a mobile sensor that sent none)
    are left out."""
    newest: dict[int, Reading] = {}
    for reading in stored:
        if reading.datastream_id not in newest or reading.time > newest[reading.datastream_id].time:
            newest[reading.datastream_id] = reading
    where: dict[str, Position] = {}
    changes: list[Change] = []
    for stream_id, reading in newest.items():
        stream = info[stream_id]
        position = reading.position or stream.location
        if position is None:
            continue
        where[stream.sensor_id] = position
        changes.append(
            observation_change(
                stream.sensor_id, stream.kind, stream.unit, position, reading.time, reading.value
            )
        )
    return changes, where
