"""The municipal sensor register: the fields a sensor in public space is registered with
(Amsterdam's APV art. 2.25a and the registers other municipalities keep), the rule that a
sensor processing personal data names its privacy statement and legal ground, and the register
as a publication (JSON entries, CSV for spreadsheets, GeoJSON for maps).

The register describes sensors, not their data: owner organisation and contact (a role address
such as ``sensoren@gemeente.nl`` is best: the register is published), chamber-of-commerce
(KvK) number, sensor type, location (a fixed sensor) or the area a mobile sensor moves in, what
it measures (its datastreams), why (``purpose``), themes, whether it processes personal data,
privacy statement URL, legal ground, placed and removed dates, and project.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final, Literal, TypedDict

from arserver.errors import InputError
from arserver.services.tabular import csv_text
from arserver.store.sensors import SensorRow

#: The lawful bases of GDPR (AVG) article 6(1), (a) to (f).
LEGAL_GROUNDS: Final = (
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
)
LegalGround = Literal[
    "consent", "contract", "legal_obligation", "vital_interests", "public_task",
    "legitimate_interests",
]  # fmt: skip

#: A KvK number has eight digits.
KVK: Final = re.compile(r"^[0-9]{8}$")

#: The columns of the CSV register, in order.
CSV_COLUMNS: Final = (
    "id", "name", "owner", "contact", "kvk", "sensor_type", "status", "longitude", "latitude",
    "height", "area", "measures", "purpose", "themes", "personal_data", "privacy_statement",
    "legal_ground", "placed_at", "removed_at", "project", "public",
)  # fmt: skip


class RegisterEntry(TypedDict):
    """One sensor as the register publishes it. ``location``: [lon, lat] or [lon, lat, h]
    (WGS 84 degrees, ellipsoidal metres) of a fixed sensor; ``area``: the GeoJSON Polygon or
    MultiPolygon a mobile sensor moves in; ``measures``: one {kind, unit} per datastream (UCUM
    units); ``status``: ``planned`` before ``placed_at``, ``removed`` from ``removed_at`` on,
    else ``active``; times ISO 8601 UTC."""

    id: str
    name: str
    owner: str | None
    contact: str | None
    kvk: str | None
    sensor_type: str | None
    status: str
    location: list[float] | None
    area: dict[str, Any] | None
    measures: list[dict[str, str]]
    purpose: str | None
    themes: list[str]
    personal_data: bool
    privacy_statement: str | None
    legal_ground: str | None
    placed_at: str | None
    removed_at: str | None
    project: str | None
    public: bool


def check_register_fields(fields: Mapping[str, Any]) -> None:
    """:class:`InputError` unless the register fields of one sensor (as they will be stored)
    agree: a sensor that processes personal data names the privacy statement (an http(s) URL)
    and the legal ground it does so under; a removal date does not precede the placement."""
    if fields.get("personal_data"):
        missing = [name for name in ("privacy_statement", "legal_ground") if not fields.get(name)]
        if missing:
            raise InputError(
                "a sensor that processes personal data needs "
                + " and ".join(f"'{name}'" for name in missing)
                + " (the privacy statement's URL and the legal ground under GDPR art. 6(1): "
                + ", ".join(LEGAL_GROUNDS)
                + ")"
            )
    placed, removed = fields.get("placed_at"), fields.get("removed_at")
    if placed is not None and removed is not None and removed < placed:
        raise InputError("'removed_at' is before 'placed_at'")


def register_entry(row: SensorRow, now: datetime) -> RegisterEntry:
    """``row`` as the register publishes it, its status as of ``now`` (timezone-aware)."""
    location = None
    if row["lon"] is not None and row["lat"] is not None:
        location = [row["lon"], row["lat"]] + ([row["h"]] if row["h"] is not None else [])
    placed, removed = row["placed_at"], row["removed_at"]
    status = "active"
    if removed is not None and removed <= now:
        status = "removed"
    elif placed is not None and placed > now:
        status = "planned"
    return {
        "id": row["id"],
        "name": row["name"],
        "owner": row["owner"],
        "contact": row["contact"],
        "kvk": row["kvk"],
        "sensor_type": row["sensor_type"],
        "status": status,
        "location": location,
        "area": row["area"],
        "measures": [{"kind": s["kind"], "unit": s["unit"]} for s in row["datastreams"]],
        "purpose": row["purpose"],
        "themes": list(row["themes"] or []),
        "personal_data": bool(row["personal_data"]),
        "privacy_statement": row["privacy_statement"],
        "legal_ground": row["legal_ground"],
        "placed_at": placed.isoformat() if placed is not None else None,
        "removed_at": removed.isoformat() if removed is not None else None,
        "project": row["project"],
        "public": bool(row["public"]),
    }


def register_csv(entries: Iterable[RegisterEntry]) -> str:
    """The register as CSV (:data:`CSV_COLUMNS`, UTF-8 with a BOM for spreadsheets): the
    location in three columns, the area as GeoJSON text, measures as ``kind [unit]`` and themes
    separated by ``; ``; cells that a spreadsheet would run as formulas start with ``'``."""
    rows = []
    for entry in entries:
        where = list(entry["location"] or []) + [None, None, None]
        area = entry["area"]
        rows.append(
            [
                entry["id"], entry["name"], entry["owner"], entry["contact"], entry["kvk"],
                entry["sensor_type"], entry["status"], where[0], where[1], where[2],
                _geojson_text(area) if area is not None else None,
                "; ".join(f"{m['kind']} [{m['unit']}]" for m in entry["measures"]),
                entry["purpose"], "; ".join(entry["themes"]),
                "yes" if entry["personal_data"] else "no", entry["privacy_statement"],
                entry["legal_ground"], entry["placed_at"], entry["removed_at"], entry["project"],
                "yes" if entry["public"] else "no",
            ]
        )  # fmt: skip
    return csv_text(rows, CSV_COLUMNS, bom=True)


def register_geojson(entries: Iterable[RegisterEntry]) -> dict[str, Any]:
    """The register as a GeoJSON FeatureCollection (RFC 7946, WGS 84): a Point per fixed
    sensor, its area per mobile one (a null geometry when it has neither); the other fields as
    properties."""
    features = []
    for entry in entries:
        geometry: dict[str, Any] | None = None
        if entry["location"] is not None:
            geometry = {"type": "Point", "coordinates": entry["location"]}
        elif entry["area"] is not None:
            geometry = entry["area"]
        properties = {k: v for k, v in entry.items() if k not in ("id", "location", "area")}
        features.append(
            {"type": "Feature", "id": entry["id"], "geometry": geometry, "properties": properties}
        )
    return {"type": "FeatureCollection", "features": features}


def _geojson_text(geometry: dict[str, Any]) -> str:
    return json.dumps(geometry, separators=(",", ":"))
