"""The write path for the sensor register: a sensor with its datastreams and, optionally, the
LoRaWAN device whose decoded uplinks feed them.

Registering emits no live event: a sensor reaches the overlay with its first observation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from arserver.geometry import location_to_wgs84
from arserver.store.sensors import SensorRow, create_sensor, get_sensor


class SensorService:
    """The only code that registers sensors."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(
        self,
        values: dict[str, Any],
        streams: Sequence[tuple[str, str]],
        location: Sequence[float] | None,
        crs: str | None,
    ) -> SensorRow:
        """Store a sensor (``values``: id, name, device and register fields) with its
        datastreams (kind, UCUM unit) in one transaction; returns it as stored.

        ``location`` is [lon, lat] or [lon, lat, h] in WGS 84 degrees and ellipsoidal metres, or
        x, y [, z] in ``crs`` (e.g. EPSG:7415: RD x, RD y, NAP height), which is converted
        first. :class:`~arserver.errors.ConflictError` if the id or the device exists."""
        where = list(location) if location is not None else None
        if where is not None and crs is not None:
            where = location_to_wgs84(where, crs)
        lon, lat, h = (where + [None])[:3] if where else (None, None, None)
        create_sensor(self.engine, {**values, "lon": lon, "lat": lat, "h": h}, list(streams))
        stored = get_sensor(self.engine, values["id"])
        assert stored is not None
        return stored
