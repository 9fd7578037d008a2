"""Rules and alerts: creating rules, listing them and alerts, acknowledging an alert."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from arserver.domain import Change, alert_change
from arserver.store.schema import alerts, rules, sensors


def create_rule(engine: Engine, values: dict[str, Any]) -> dict[str, Any]:
    rule_id = uuid.uuid4().hex
    with engine.begin() as connection:
        connection.execute(insert(rules).values(id=rule_id, created_at=datetime.now(UTC), **values))
        row = connection.execute(select(rules).where(rules.c.id == rule_id)).one()
    return dict(row._mapping)


def list_rules(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [
            dict(r._mapping) for r in connection.execute(select(rules).order_by(rules.c.created_at))
        ]


def list_alerts(engine: Engine, status: str | None, limit: int) -> list[dict[str, Any]]:
    """Alerts newest first, optionally of one status."""
    query = select(alerts).order_by(alerts.c.opened_at.desc()).limit(limit)
    if status is not None:
        query = query.where(alerts.c.status == status)
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(query)]


def acknowledge(
    engine: Engine, alert_id: str, by: str
) -> tuple[dict[str, Any] | None, Change | None]:
    """Mark an open alert acknowledged; returns the alert (None if there is no such alert) and
    the live change to announce (None if nothing changed, or its sensor has no location).
    Acknowledging an acknowledged or resolved alert changes nothing."""
    with engine.begin() as connection:
        changed = connection.execute(
            update(alerts)
            .where(alerts.c.id == alert_id, alerts.c.status == "open")
            .values(status="acknowledged", acknowledged_at=datetime.now(UTC), acknowledged_by=by)
        ).rowcount
        row = connection.execute(
            select(alerts, sensors.c.lon, sensors.c.lat, sensors.c.h)
            .outerjoin(sensors, sensors.c.id == alerts.c.sensor_id)
            .where(alerts.c.id == alert_id)
        ).first()
    if row is None:
        return None, None
    alert = dict(row._mapping)
    change = None
    if changed and alert["lon"] is not None:
        change = alert_change(
            alert["id"], alert["status"], alert["rule_id"], alert["sensor_id"], alert["kind"],
            alert["value"], alert["acknowledged_at"], (alert["lon"], alert["lat"], alert["h"]),
        )  # fmt: skip
    for key in ("lon", "lat", "h"):
        alert.pop(key)
    return alert, change
