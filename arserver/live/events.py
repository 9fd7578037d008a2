"""Change events: what a write path tells the live hub after it has committed.

An event is small, JSON-serialisable and self-contained (it carries its position), so the hub
can match it to subscribed areas without reading the database, and a bus can carry it between
processes unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

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
