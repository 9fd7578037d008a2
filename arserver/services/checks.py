"""Checking observation items one by one for the observation service: every item is accepted or
rejected with a cause and a reason, never crashing the batch.

Causes (counted at ``GET /api/v1/ingest/stats``): ``malformed``, ``unknown_sensor``,
``unknown_kind``, ``ambiguous_kind``, ``not_finite``, ``out_of_range``, ``bad_time``,
``future_time``, ``too_old`` (older than the raw retention window: it would be deleted at once,
and could be counted twice in the hourly aggregates).

Times are normalised to UTC here, so that one instant written with different offsets is one
reading on every backend.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from arserver.domain import Reading, Rejection, Streams

#: Physically possible values per kind (units as registered; the usual UCUM units). Values outside
#: are sensor faults or unit mistakes, not measurements.
KIND_RANGES: dict[str, tuple[float, float]] = {
    "no2": (0.0, 2000.0),  # ug/m3
    "pm25": (0.0, 1000.0),  # ug/m3
    "pm10": (0.0, 2000.0),  # ug/m3
    "noise_laeq": (0.0, 200.0),  # dB(A)
    "water_level": (-30.0, 60.0),  # m (NAP)
    "parking_bay": (0.0, 1.0),  # 0 free, 1 occupied
    "occupancy": (0.0, 1.0),  # fraction
    "temperature": (-60.0, 70.0),  # Cel
    "humidity": (0.0, 100.0),  # %
}
#: Readings dated later than this after their arrival are refused (clock faults).
FUTURE_LIMIT = timedelta(minutes=5)


def check(
    items: list[Any], streams: Streams, now: datetime, oldest: datetime | None = None
) -> tuple[list[Reading], list[Rejection]]:
    """Split ``items`` into readings and rejections (each with its index in ``items``).
    Readings dated before ``oldest`` (if given) are rejected as ``too_old``."""
    readings: list[Reading] = []
    rejections: list[Rejection] = []
    for index, item in enumerate(items):
        outcome = _check_one(index, item, streams, now, oldest)
        if isinstance(outcome, Rejection):
            rejections.append(outcome)
        else:
            readings.append(outcome)
    return readings, rejections


def _check_one(
    index: int, item: Any, streams: Streams, now: datetime, oldest: datetime | None
) -> Reading | Rejection:
    if not isinstance(item, dict):
        return Rejection(index, "malformed", "an observation must be a JSON object")
    sensor = item.get("sensor")
    if not isinstance(sensor, str) or not sensor:
        return Rejection(index, "malformed", "'sensor' must be a sensor id")
    kinds = streams.get(sensor)
    if kinds is None:
        return Rejection(index, "unknown_sensor", f"no sensor {sensor!r} is registered")
    kind = item.get("kind")
    if kind is None:
        if len(kinds) != 1:
            return Rejection(
                index,
                "ambiguous_kind",
                f"sensor {sensor!r} has several datastreams; say which 'kind'",
            )
        kind = next(iter(kinds))
    if kind not in kinds:
        return Rejection(index, "unknown_kind", f"sensor {sensor!r} has no datastream {kind!r}")
    value = item.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Rejection(index, "malformed", "'value' must be a number")
    if not math.isfinite(value):
        return Rejection(index, "not_finite", f"value {value!r} is not a finite number")
    low, high = KIND_RANGES.get(kind, (-math.inf, math.inf))
    if not low <= value <= high:
        return Rejection(
            index, "out_of_range", f"{kind} value {value} is outside {low:g}..{high:g}"
        )
    time = _time(item.get("time"))
    if time is None:
        return Rejection(index, "bad_time", "'time' must be an ISO 8601 time with a time zone")
    if time - now > FUTURE_LIMIT:
        return Rejection(index, "future_time", f"time {item['time']} is more than 5 minutes ahead")
    if oldest is not None and time < oldest:
        return Rejection(
            index, "too_old", f"time {item['time']} is older than the raw retention window"
        )
    raw_position = item.get("position")
    position = _position(raw_position)
    if raw_position is not None and position is None:
        return Rejection(index, "malformed", "'position' must be [lon, lat] or [lon, lat, h]")
    source_id = item.get("id")
    return Reading(
        index,
        kinds[kind],
        time,
        float(value),
        position,
        str(source_id)[:200] if source_id is not None else None,
    )


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None


def _position(value: Any) -> tuple[float, float, float | None] | None:
    """The position, or None when it is absent or unusable (the caller tells which)."""
    if (
        value is None
        or not isinstance(value, list)
        or len(value) not in (2, 3)
        or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in value
        )
        or not -180 <= value[0] <= 180
        or not -90 <= value[1] <= 90
    ):
        return None
    return (float(value[0]), float(value[1]), float(value[2]) if len(value) == 3 else None)
