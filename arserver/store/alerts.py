"""Alerts: the SQL behind :class:`~arserver.services.alerts.AlertService` (opening, resolving,
acknowledging) and the alerts' listing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict, cast

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from arserver.domain import Position
from arserver.store.schema import alerts, sensors


class AlertRow(TypedDict):
    """An alert: ``status`` open | acknowledged | resolved; ``value`` what the rule saw when it
    opened (raw or window mean); times timezone-aware UTC."""

    id: str
    rule_id: str
    sensor_id: str
    kind: str
    status: str
    value: float
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None


def list_alerts(engine: Engine, status: str | None, limit: int) -> list[AlertRow]:
    """Alerts newest first, optionally of one status."""
    query = select(alerts).order_by(alerts.c.opened_at.desc()).limit(limit)
    if status is not None:
        query = query.where(alerts.c.status == status)
    with engine.connect() as connection:
        return [cast(AlertRow, dict(r._mapping)) for r in connection.execute(query)]


def open_alerts(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert open alerts (each: id, rule_id, sensor_id, kind, value, opened_at)."""
    if rows:
        connection.execute(insert(alerts), [{**row, "status": "open"} for row in rows])


def resolve_alerts(connection: Connection, resolved: Sequence[tuple[str, datetime]]) -> None:
    """Mark alerts (id, when) resolved, whether open or acknowledged."""
    if resolved:
        connection.execute(
            update(alerts)
            .where(alerts.c.id == bindparam("alert"))
            .values(status="resolved", resolved_at=bindparam("at")),
            [{"alert": alert_id, "at": at} for alert_id, at in resolved],
        )


def acknowledge(connection: Connection, alert_id: str, by: str, at: datetime) -> bool:
    """Mark an open alert acknowledged; whether it was open (acknowledging an acknowledged or
    resolved alert, or an unknown one, changes nothing)."""
    changed = connection.execute(
        update(alerts)
        .where(alerts.c.id == alert_id, alerts.c.status == "open")
        .values(status="acknowledged", acknowledged_at=at, acknowledged_by=by)
    ).rowcount
    return bool(changed)


def alert_at(connection: Connection, alert_id: str) -> tuple[AlertRow, Position | None] | None:
    """An alert's row and its sensor's fixed location (None when it has none); None if there
    is no such alert."""
    row = connection.execute(
        select(alerts, sensors.c.lon, sensors.c.lat, sensors.c.h)
        .outerjoin(sensors, sensors.c.id == alerts.c.sensor_id)
        .where(alerts.c.id == alert_id)
    ).first()
    if row is None:
        return None
    alert = dict(row._mapping)
    lon, lat, h = (alert.pop(key) for key in ("lon", "lat", "h"))
    return cast(AlertRow, alert), ((lon, lat, h) if lon is not None else None)
