"""The vocabulary every layer may import: positions, checked readings, alert transitions and
change events. Plain data, no I/O; nothing here imports another ``arserver`` module.

A change event is what a service tells the live hub after its transaction committed. It is
small, JSON-serialisable and self-contained (it carries its position), so the hub can match it
to subscribed areas without reading the database, and a bus can carry it between processes
unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

#: How records of people's acts name a resident: this and the id of their token
#: (:func:`arserver.security.actors.person_of`).
TOKEN_ACTOR_PREFIX = "token:"

#: Layers a client can subscribe to (a contract of ``/api/v1/live``).
LAYERS = ("sensors", "alerts", "inspections", "annotations", "assets", "parking")

Layer = Literal["sensors", "alerts", "inspections", "annotations", "assets", "parking"]


@dataclass(frozen=True, slots=True)
class Change:
    """One thing that changed at one place.

    ``key`` identifies the thing (``sensor:{id}:{kind}``, ``alert:{id}``...): a newer change of
    the same key replaces an older one wherever changes are queued (conflation). ``lon``/``lat``
    are WGS 84 degrees, ``h`` ellipsoidal metres (None when unknown). ``time`` is ISO 8601 UTC:
    the time of the observation or of the state change. ``removed`` says the thing is gone
    (a resolved alert, a deleted asset).
    """

    layer: Layer
    key: str
    kind: str | None
    lon: float
    lat: float
    h: float | None
    time: str
    data: dict[str, Any] = field(default_factory=dict)
    removed: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Change:
        return cls(**value)


#: Kinds shown on the ``parking`` layer rather than ``sensors``.
PARKING_KINDS = frozenset({"parking_bay", "occupancy"})

Position = tuple[float, float, float | None]  # WGS 84 lon, lat (degrees), ellipsoidal h (m)


@dataclass(frozen=True)
class Rejection:
    """An observation item that was refused: its index in the batch, a cause (counted at
    ``/api/v1/ingest/stats``) and a reason for people."""

    index: int
    cause: str
    reason: str


@dataclass(frozen=True)
class Reading:
    """A checked observation, ready to store. ``time`` is timezone-aware UTC; ``position`` a
    mobile sensor's own position (WGS 84 lon, lat, ellipsoidal h), None for a fixed one."""

    index: int
    datastream_id: int
    time: datetime
    value: float
    position: Position | None
    source_id: str | None


#: {sensor id: {kind: datastream id}}: what a batch of observation items is checked against.
Streams = dict[str, dict[str, int]]


@dataclass(frozen=True)
class StreamInfo:
    """What the live hub needs to place a datastream's readings."""

    sensor_id: str
    kind: str
    unit: str
    location: Position | None  # the sensor's fixed location, None for a mobile one


@dataclass(frozen=True)
class AlertChange:
    """An alert that opened or resolved (``status``), at the time of the reading that did it
    (timezone-aware UTC), with the value the rule saw (raw or window mean)."""

    alert_id: str
    status: str
    rule_id: str
    sensor_id: str
    kind: str
    value: float
    time: datetime


def observation_change(
    sensor_id: str, kind: str, unit: str, position: Position, time: datetime, value: float
) -> Change:
    """The live event of a datastream's newest value."""
    layer: Layer = "parking" if kind in PARKING_KINDS else "sensors"
    return Change(
        layer, f"sensor:{sensor_id}:{kind}", kind, *position,
        time=_iso(time),
        data={"sensor": sensor_id, "value": value, "unit": unit},
    )  # fmt: skip


def alert_change(
    alert_id: str, status: str, rule_id: str, sensor_id: str, kind: str, value: float,
    time: datetime, position: Position,
) -> Change:  # fmt: skip
    """The live event of an alert's state; a resolved alert leaves the overlay."""
    return Change(
        "alerts", f"alert:{alert_id}", kind, *position,
        time=_iso(time),
        data={
            "alert": alert_id, "status": status, "rule": rule_id, "sensor": sensor_id,
            "value": value,
        },
        removed=status == "resolved",
    )  # fmt: skip


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds, so that event times sort as strings (``moment`` is
    timezone-aware)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def asset_change(
    asset_id: str, name: str, layer: str, bbox: tuple[float, float, float, float],
    time: datetime, *, public: bool, removed: bool = False,
) -> Change:  # fmt: skip
    """The live event of a published (or deleted) asset, placed at the centre of its extent;
    ``kind`` is the asset's layer (e.g. ``cables``)."""
    west, south, east, north = bbox
    return Change(
        "assets", f"asset:{asset_id}", layer, (west + east) / 2, (south + north) / 2, None,
        time=_iso(time),
        data={
            "asset": asset_id, "name": name, "tileset": f"/tiles/{asset_id}/tileset.json",
            "extent": [west, south, east, north], "public": public,
        },
        removed=removed,
    )  # fmt: skip


#: Inspection statuses after which an inspection leaves the live overlay.
CLOSED_STATUSES = frozenset({"resolved", "rejected"})


def inspection_change(
    inspection_id: str, status: str, category: str, severity: str, description: str,
    position: Position, time: datetime, *, asset_id: str | None = None,
    feature_id: str | None = None, assignee: str | None = None,
) -> Change:  # fmt: skip
    """The live event of an inspection's state; ``kind`` is its category. A resolved or
    rejected inspection leaves the overlay. ``description`` goes out whole (it is bounded
    where it is written)."""
    return Change(
        "inspections", f"inspection:{inspection_id}", category, *position,
        time=_iso(time),
        data={
            "inspection": inspection_id, "status": status, "category": category,
            "severity": severity, "description": description, "asset": asset_id,
            "feature": feature_id, "assignee": assignee,
        },
        removed=status in CLOSED_STATUSES,
    )  # fmt: skip


def comment_change(
    comment_id: str, thread_id: str, text: str, author_name: str, position: Position,
    time: datetime, *, round_id: str | None = None, reply_to: str | None = None,
    asset_id: str | None = None, feature_id: str | None = None, response: str | None = None,
    visible: bool = True,
) -> Change:  # fmt: skip
    """The live event of a comment on the ``annotations`` layer; ``kind`` is ``comment`` or
    ``reply``. A hidden or erased comment leaves the overlay (``removed``, without its text).
    ``author_name`` is what everyone sees (a resident's pseudonym), never who wrote it."""
    data: dict[str, Any] = {"comment": comment_id, "thread": thread_id, "round": round_id}
    if visible:
        data.update(
            text=text, author=author_name, reply_to=reply_to, asset=asset_id,
            feature=feature_id, response=response,
        )  # fmt: skip
    return Change(
        "annotations", f"comment:{comment_id}", "reply" if reply_to else "comment", *position,
        time=_iso(time), data=data, removed=not visible,
    )  # fmt: skip
