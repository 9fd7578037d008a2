"""The write path for observations: check, store, run the rules (one transaction, committed
before the reply), count, then tell the live hub.

``ObservationWriter`` is the only code that stores observations; the HTTP API, the MQTT consumer
and the tests all go through it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from arserver.ingest.validation import Reading, Rejection, check
from arserver.insight.rules import AlertChange, evaluate
from arserver.live.bus import Bus
from arserver.live.events import Change, Layer
from arserver.store.sensors import StreamInfo, count_causes, store_readings, stream_info, streams_of

#: Kinds shown on the ``parking`` layer rather than ``sensors``.
PARKING_KINDS = frozenset({"parking_bay", "occupancy"})


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
    would delete them at once. ``bus``: where committed changes go (none: nowhere).
    """

    def __init__(
        self, engine: Engine, *, raw_retention: timedelta | None = None, bus: Bus | None = None
    ) -> None:
        self.engine = engine
        self.raw_retention = raw_retention
        self.bus = bus

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
            wanted = {
                i["sensor"]
                for i in items
                if isinstance(i, dict) and isinstance(i.get("sensor"), str)
            }
            readings, rejected = check(items, streams_of(connection, wanted), moment, oldest)
            stored = store_readings(connection, readings)
            alerts = evaluate(connection, stored)  # rules see the batch in the same transaction
            causes = Counter(r.cause for r in rejected) + (counted or Counter())
            causes["accepted"] += len(stored)
            causes["duplicate"] += len(readings) - len(stored)
            count_causes(connection, +causes)
            info = stream_info(connection, {r.datastream_id for r in stored}) if stored else {}
        changes = changes_for(stored, alerts, info)
        if self.bus is not None and changes:
            self.bus.publish(changes)
        return IngestResult(len(stored), len(readings) - len(stored), rejected, alerts, changes)


def changes_for(
    stored: Sequence[Reading], alerts: Sequence[AlertChange], info: dict[int, StreamInfo]
) -> list[Change]:
    """One change per datastream (its newest reading in the batch) and one per alert change.
    Things with no known position (a mobile sensor that sent none) are left out."""
    newest: dict[int, Reading] = {}
    for reading in stored:
        if reading.datastream_id not in newest or reading.time > newest[reading.datastream_id].time:
            newest[reading.datastream_id] = reading
    where: dict[str, tuple[float, float, float | None]] = {}
    changes: list[Change] = []
    for stream_id, reading in newest.items():
        stream = info[stream_id]
        position = reading.position or stream.location
        if position is None:
            continue
        where[stream.sensor_id] = position
        layer: Layer = "parking" if stream.kind in PARKING_KINDS else "sensors"
        changes.append(
            Change(
                layer, f"sensor:{stream.sensor_id}:{stream.kind}", stream.kind, *position,
                time=reading.time.isoformat(),
                data={"sensor": stream.sensor_id, "value": reading.value, "unit": stream.unit},
            )
        )  # fmt: skip
    for alert in alerts:
        position = where.get(alert.sensor_id)
        if position is None:
            continue
        changes.append(alert_change(alert, position))
    return changes


def alert_change(alert: AlertChange, position: tuple[float, float, float | None]) -> Change:
    """The live event of an alert's new state (resolved alerts leave the overlay)."""
    time = alert.time if alert.time.tzinfo else alert.time.replace(tzinfo=UTC)
    return Change(
        "alerts", f"alert:{alert.alert_id}", alert.kind, *position,
        time=time.isoformat(),
        data={
            "alert": alert.alert_id, "status": alert.status, "rule": alert.rule_id,
            "sensor": alert.sensor_id, "value": alert.value,
        },
        removed=alert.status == "resolved",
    )  # fmt: skip
