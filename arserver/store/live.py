"""What is live now, read from the database when a hub starts (later changes come over the
bus): the newest value of every datastream of a sensor with a fixed location, every alert that
is open or acknowledged, and every published asset."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select

from arserver.domain import Change, alert_change, asset_change, observation_change
from arserver.store.schema import alerts, assets, sensors
from arserver.store.sensors import latest_in_area

WORLD = (-180.0, -90.0, 180.0, 90.0)


def current_changes(engine: Engine) -> list[Change]:
    changes = [
        observation_change(
            item["sensor"], item["kind"], item["unit"],
            (item["location"][0], item["location"][1],
             item["location"][2] if len(item["location"]) > 2 else None),
            datetime.fromisoformat(item["time"]), item["value"],
        )
        for item in latest_in_area(engine, WORLD)
    ]  # fmt: skip
    query = (
        select(
            alerts.c.id, alerts.c.status, alerts.c.rule_id, alerts.c.sensor_id, alerts.c.kind,
            alerts.c.value, alerts.c.opened_at, alerts.c.acknowledged_at, sensors.c.lon,
            sensors.c.lat, sensors.c.h,
        )
        .join(sensors, sensors.c.id == alerts.c.sensor_id)
        .where(alerts.c.status.in_(["open", "acknowledged"]), sensors.c.lon.is_not(None))
    )  # fmt: skip
    with engine.connect() as connection:
        for row in connection.execute(query):
            changes.append(
                alert_change(
                    row.id,
                    row.status,
                    row.rule_id,
                    row.sensor_id,
                    row.kind,
                    row.value,
                    row.acknowledged_at or row.opened_at,
                    (row.lon, row.lat, row.h),
                )
            )
    ready = select(
        assets.c.id, assets.c.name, assets.c.layer, assets.c.public, assets.c.updated_at,
        assets.c.west, assets.c.south, assets.c.east, assets.c.north,
    ).where(assets.c.status == "ready", assets.c.west.is_not(None))  # fmt: skip
    with engine.connect() as connection:
        for asset in connection.execute(ready):
            extent = (asset.west, asset.south, asset.east, asset.north)
            changes.append(
                asset_change(
                    asset.id,
                    asset.name,
                    asset.layer,
                    extent,
                    asset.updated_at,
                    public=bool(asset.public),
                )
            )
    return changes
