"""The write path for the sensor register: a sensor with its datastreams, the LoRaWAN device
whose decoded uplinks feed them, and its register fields (:mod:`arserver.services.register`).

Registering emits no live event: a sensor reaches the overlay with its first observation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from arserver.errors import NotFoundError
from arserver.geometry import location_to_wgs84
from arserver.services.areas import parse_area
from arserver.services.register import RegisterEntry, check_register_fields, register_entry
from arserver.store.sensors import (
    SensorRow,
    create_sensor,
    get_sensor,
    list_sensors,
    update_sensor,
)

#: The fields a sensor's register entry can change after registration (its id, datastreams,
#: device and fixed location stay as registered).
CHANGEABLE = frozenset(
    {
        "name", "owner", "contact", "kvk", "sensor_type", "purpose", "themes", "personal_data",
        "privacy_statement", "legal_ground", "placed_at", "removed_at", "project", "public",
        "area",
    }
)  # fmt: skip


class SensorService:
    """The only code that registers sensors and changes their register entries."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(
        self,
        values: dict[str, Any],
        streams: Sequence[tuple[str, str]],
        location: Sequence[float] | None,
        crs: str | None,
    ) -> SensorRow:
        """Store a sensor (``values``: id, name, device and register fields, ``area`` as GeoJSON
        in ``crs``) with its datastreams (kind, UCUM unit) in one transaction; returns it as
        stored.

        ``location`` is [lon, lat] or [lon, lat, h] in WGS 84 degrees and ellipsoidal metres, or
        x, y [, z] in ``crs`` (e.g. EPSG:7415: RD x, RD y, NAP height), which is converted
        first. :class:`~arserver.errors.ConflictError` if the id or the device exists;
        :class:`~arserver.errors.InputError` if the register fields disagree (personal data
        without a privacy statement and legal ground) or the area is no valid polygon."""
        check_register_fields(values)
        where = list(location) if location is not None else None
        if where is not None and crs is not None:
            where = location_to_wgs84(where, crs)
        lon, lat, h = (where + [None])[:3] if where else (None, None, None)
        stored_values = {**values, "lon": lon, "lat": lat, "h": h}
        if values.get("area") is not None:
            stored_values["area"] = parse_area(values["area"], None, crs).geojson
        create_sensor(self.engine, stored_values, list(streams))
        stored = get_sensor(self.engine, values["id"])
        assert stored is not None
        return stored

    def change(self, sensor_id: str, changes: Mapping[str, Any], crs: str | None) -> SensorRow:
        """Change register fields of a sensor (keys of :data:`CHANGEABLE`; None clears one,
        ``area`` is GeoJSON in ``crs``); the entry as changed must still satisfy
        :func:`~arserver.services.register.check_register_fields`. Returns it as stored;
        :class:`~arserver.errors.NotFoundError` for an unknown sensor."""
        unknown = set(changes) - CHANGEABLE
        if unknown:
            raise ValueError(f"not changeable: {sorted(unknown)}")
        current = get_sensor(self.engine, sensor_id)
        if current is None:
            raise NotFoundError(f"no sensor {sensor_id!r}")
        values = dict(changes)
        if values.get("area") is not None:
            values["area"] = parse_area(values["area"], None, crs).geojson
        for flag in ("personal_data", "public"):
            if flag in values and values[flag] is None:
                values[flag] = False
        check_register_fields({**current, **values})
        if values and not update_sensor(self.engine, sensor_id, values):
            raise NotFoundError(f"no sensor {sensor_id!r}")
        stored = get_sensor(self.engine, sensor_id)
        if stored is None:
            raise NotFoundError(f"no sensor {sensor_id!r}")
        return stored

    def register_entries(self, *, public_only: bool) -> list[RegisterEntry]:
        """The register: every sensor (only public ones when ``public_only``), by id."""
        now = datetime.now(UTC)
        return [
            register_entry(row, now) for row in list_sensors(self.engine, public_only=public_only)
        ]
