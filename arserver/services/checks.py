"""Checking observation items one by one for the observation service: every item is accepted or
rejected with a cause and a reason, never crashing the batch.

Causes (counted at ``GET /api/v1/ingest/stats``): ``malformed``, ``unknown_sensor``,
``unknown_kind``, ``ambiguous_kind``, ``not_finite``, ``out_of_range``, ``bad_time``,
``future_time``, ``too_old`` (older than the raw retention window: it would be deleted at once,
and could be counted twice in the hourly aggregates).

Times are normalised to UTC here, so that one instant written with different offsets is one
reading on every backend. Nothing in an item can make the check raise: a time whose UTC falls
outside the years the code can compute with (before 1900, or past 9999 after the conversion) is
``bad_time``, text that a database cannot hold (a NUL character, a lone surrogate) is
``malformed``, a number no double holds is ``out_of_range``.
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
    # Car-park counters: kept as counted, negative and over capacity included (the parking
    # service clamps and flags them), so nothing a feed said is lost.
    "free_spaces": (-100_000.0, 100_000.0),  # {spaces}
    "temperature": (-60.0, 70.0),  # Cel
    "humidity": (0.0, 100.0),  # %
}
#: Readings dated later than this after their arrival are refused (clock faults).
FUTURE_LIMIT = timedelta(minutes=5)
#: Readings dated earlier are refused (clock faults). It leaves room below for the trailing
#: windows of the rules and the hours of the aggregates, which must not fall before year 1.
EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)
#: Larger values are refused for every kind: sums and means of them would overflow a double.
MAX_ABS_VALUE = 1e15
#: Heights of a position (m) beyond this are not on or near the earth.
MAX_ABS_HEIGHT_M = 100_000.0


def storable_text(value: str) -> bool:
    """Whether both databases can store ``value`` as it is: PostgreSQL text holds no NUL
    character, and a lone surrogate (``"\\ud800"`` in JSON) has no UTF-8 encoding."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
    if not isinstance(sensor, str) or not sensor or not storable_text(sensor):
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
    if not isinstance(kind, str):
        return Rejection(index, "malformed", "'kind' must be the name of a datastream")
    if kind not in kinds:
        return Rejection(index, "unknown_kind", f"sensor {sensor!r} has no datastream {kind!r}")
    raw_value = item.get("value")
    if isinstance(raw_value, bool) or not isinstance(raw_value, int | float):
        return Rejection(index, "malformed", "'value' must be a number")
    value = _float(raw_value)
    if value is None:
        return Rejection(index, "out_of_range", "value is too large for a double")
    if not math.isfinite(value):
        return Rejection(index, "not_finite", f"value {value!r} is not a finite number")
    low, high = KIND_RANGES.get(kind, (-MAX_ABS_VALUE, MAX_ABS_VALUE))
    if not low <= value <= high:
        return Rejection(
            index, "out_of_range", f"{kind} value {value} is outside {low:g}..{high:g}"
        )
    time = _time(item.get("time"))
    if isinstance(time, str):
        return Rejection(index, "bad_time", time)
    if time < EARLIEST_TIME:
        return Rejection(
            index, "bad_time", f"time {item['time']} is before {EARLIEST_TIME.year} (UTC)"
        )
    if time - now > FUTURE_LIMIT:
        return Rejection(index, "future_time", f"time {item['time']} is more than 5 minutes ahead")
    if oldest is not None and time < oldest:
        return Rejection(
            index, "too_old", f"time {item['time']} is older than the raw retention window"
        )
    raw_position = item.get("position")
    position = _position(raw_position)
    if raw_position is not None and position is None:
        return Rejection(
            index,
            "malformed",
            "'position' must be [lon, lat] or [lon, lat, h] (degrees, and metres within "
            f"{MAX_ABS_HEIGHT_M:g} of the ellipsoid)",
        )
    source_id = item.get("id")
    if isinstance(source_id, str) and not storable_text(source_id):
        return Rejection(
            index, "malformed", "'id' must be text without NUL characters or lone surrogates"
        )
    return Reading(
        index,
        kinds[kind],
        time,
        value,
        position,
        str(source_id)[:200] if source_id is not None else None,
    )


def _float(value: int | float) -> float | None:
    """``value`` as a float; None for an integer too large for one."""
    try:
        return float(value)
    except OverflowError:
        return None


def _time(value: Any) -> datetime | str:
    """The UTC time of an ISO 8601 text with a time zone, or why there is none."""
    if not isinstance(value, str):
        return "'time' must be an ISO 8601 time with a time zone"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return "'time' must be an ISO 8601 time with a time zone"
    if parsed.tzinfo is None:
        return "'time' must be an ISO 8601 time with a time zone"
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        return f"time {value} is out of range: in UTC it falls outside the years 1 to 9999"


def _position(value: Any) -> tuple[float, float, float | None] | None:
    """The position, or None when it is absent or unusable (the caller tells which)."""
    if (
        value is None
        or not isinstance(value, list)
        or len(value) not in (2, 3)
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        return None
    numbers: list[float] = []
    for v in value:
        number = _float(v)
        if number is None or not math.isfinite(number):
            return None
        numbers.append(number)
    lon, lat = numbers[0], numbers[1]
    h = numbers[2] if len(numbers) == 3 else None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return None
    if h is not None and not -MAX_ABS_HEIGHT_M <= h <= MAX_ABS_HEIGHT_M:
        return None
    return (lon, lat, h)
