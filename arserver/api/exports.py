"""Observation exports: CSV for spreadsheets, GeoJSON for GIS, and a mobile sensor's trajectory."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.responses import JSONResponse

from arserver.store.sensors import ObservationItem


class GeoJSONResponse(JSONResponse):
    """JSON with the GeoJSON media type (RFC 7946)."""

    media_type = "application/geo+json"


def to_csv(rows: list[ObservationItem]) -> str:
    """``time,kind,value,lon,lat,h``, one line per observation, in the order given."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["time", "kind", "value", "lon", "lat", "h"])
    for row in rows:
        position = list(row.get("position") or []) + [None, None, None]
        writer.writerow([row["time"], row["kind"], row["value"], *position[:3]])
    return buffer.getvalue()


def to_geojson(sensor: dict[str, Any], rows: list[ObservationItem]) -> dict[str, Any]:
    """A FeatureCollection of points: each observation where it was measured (its own
    position, or the sensor's location); observations with neither are left out."""
    features = []
    for row in rows:
        where = row.get("position") or sensor.get("location")
        if not where:
            continue
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": where},
                "properties": {
                    "sensor": sensor["id"],
                    "kind": row["kind"],
                    "time": row["time"],
                    "value": row["value"],
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def trajectory(sensor_id: str, rows: list[ObservationItem]) -> dict[str, Any]:
    """A mobile sensor's path: a LineString through its positioned observations, oldest first,
    with the times and values alongside (a Point for a single position)."""
    positioned = sorted((r for r in rows if r.get("position")), key=lambda r: r["time"])
    coordinates = [r["position"] for r in positioned]
    geometry: dict[str, Any] | None = None
    if len(coordinates) == 1:
        geometry = {"type": "Point", "coordinates": coordinates[0]}
    elif coordinates:
        geometry = {"type": "LineString", "coordinates": coordinates}
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {
            "sensor": sensor_id,
            "times": [r["time"] for r in positioned],
            "values": [r["value"] for r in positioned],
        },
    }
