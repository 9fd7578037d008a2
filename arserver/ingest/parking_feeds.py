"""Records shared by the car-park feed readers (SPDP v2 and DATEX II), and their checks.

The readers are pure: bytes or parsed JSON in, these records out. Static publications become
:class:`CarParkInfo`, dynamic ones :class:`CarParkStatus`, both keyed by an identifier prefixed
with the standard (``"spdp:<uuid>"``, ``"datex2:<id>"``) so that the two never collide. A reader
returns one :class:`FeedBatch`; an item it cannot use is skipped and named in ``problems``, while
a document that is unusable as a whole raises :class:`FeedError`.

Counts are kept as the publication states them (a counter above capacity or below zero is a
reading, not an error); the forecaster decides how to clamp them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from arserver.errors import InputError

#: At most this many problem lines are kept in a batch; the rest are only counted.
MAX_PROBLEMS = 100

#: Status times outside [MIN_TIME, MAX_TIME) are refused as out of range.
MIN_TIME = datetime(1990, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2100, 1, 1, tzinfo=UTC)

#: Counts above this are refused as implausible (no car park has a million spaces).
MAX_COUNT = 1_000_000


class FeedError(InputError):
    """A feed document (or the fetch of one) that cannot be used; the message says why."""


@dataclass(frozen=True)
class CarParkInfo:
    """Static description of one car park.

    ``lon``/``lat`` are WGS 84 degrees: the vehicle entrance or the site's point, the centre of
    its area otherwise. ``area`` is the outer ring ``[[lon, lat], ...]`` when the publication gives
    one (WGS 84 degrees, closed: first point repeated last). ``capacity`` is the number of spaces.
    """

    id: str
    name: str
    lon: float
    lat: float
    capacity: int | None
    area: list[list[float]] | None
    operator: str | None
    source: str  # "spdp" | "datex2"


@dataclass(frozen=True)
class CarParkStatus:
    """Dynamic status of one car park at ``time`` (timezone-aware, UTC).

    ``vacant`` is the number of free spaces as published (it may exceed ``capacity`` or be
    negative when the counter drifts); ``capacity`` is the capacity the status itself reports,
    else None. ``open``/``full`` are None when the publication does not say.
    """

    id: str
    time: datetime
    vacant: int | None
    capacity: int | None
    open: bool | None
    full: bool | None


@dataclass(frozen=True)
class FeedBatch:
    """What one read gave: car parks, statuses and the items skipped (one line each).

    ``problems`` holds at most :data:`MAX_PROBLEMS` lines; when more items were skipped its last
    line says how many more.
    """

    car_parks: list[CarParkInfo]
    statuses: list[CarParkStatus]
    problems: list[str]


@dataclass
class Problems:
    """Bounded collector of problem lines; :meth:`lines` gives the list for a batch."""

    kept: list[str] = field(default_factory=list)
    dropped: int = 0

    def add(self, line: str) -> None:
        if len(self.kept) < MAX_PROBLEMS:
            self.kept.append(line)
        else:
            self.dropped += 1

    def extend(self, lines: list[str]) -> None:
        for line in lines:
            if line.startswith("... and ") and line.endswith(" more problems"):
                self.dropped += int(line.split()[2])
            else:
                self.add(line)

    def lines(self) -> list[str]:
        if self.dropped:
            return [*self.kept, f"... and {self.dropped} more problems"]
        return list(self.kept)


def merge(*batches: FeedBatch) -> FeedBatch:
    """One batch holding the car parks, statuses and problems of all ``batches``, in order."""
    problems = Problems()
    car_parks: list[CarParkInfo] = []
    statuses: list[CarParkStatus] = []
    for batch in batches:
        car_parks.extend(batch.car_parks)
        statuses.extend(batch.statuses)
        problems.extend(batch.problems)
    return FeedBatch(car_parks, statuses, problems.lines())


def short(value: Any, limit: int = 60) -> str:
    """``repr`` of a value cut to ``limit`` characters, for messages about bad input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def to_number(value: Any, what: str) -> float:
    """A finite number from a JSON number or a numeric string; FeedError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FeedError(f"{what} must be a number, not {short(value)}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise FeedError(f"{what} must be a number, not {short(value)}") from None
    if not math.isfinite(number):
        raise FeedError(f"{what} must be a finite number, not {short(value)}")
    return number


def to_count(value: Any, what: str) -> int:
    """A whole count (sign kept) from a number or numeric string; FeedError otherwise."""
    number = to_number(value, what)
    if number != int(number):
        raise FeedError(f"{what} must be a whole number, not {short(value)}")
    if abs(number) > MAX_COUNT:
        raise FeedError(f"{what} is out of range: {short(value)}")
    return int(number)


def to_capacity(value: Any, what: str) -> int:
    """A capacity: a whole count of at least zero."""
    count = to_count(value, what)
    if count < 0:
        raise FeedError(f"{what} must not be negative, not {count}")
    return count


def check_time(time: datetime, what: str) -> datetime:
    """``time`` in UTC (naive times are taken as UTC), refused outside MIN_TIME..MAX_TIME."""
    if time.tzinfo is None:
        time = time.replace(tzinfo=UTC)
    try:
        utc = time.astimezone(UTC)
    except OverflowError:
        raise FeedError(f"{what} is out of range: {time.isoformat()}") from None
    if not MIN_TIME <= utc < MAX_TIME:
        raise FeedError(f"{what} is out of range: {utc.isoformat()}")
    return utc


def valid_position(lon: float, lat: float) -> bool:
    """Whether lon/lat are usable WGS 84 degrees (in range, and not the 0,0 placeholder)."""
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        return False
    return not (lon == 0.0 and lat == 0.0)


def ring_centre(ring: list[list[float]]) -> tuple[float, float]:
    """Area centroid (lon, lat) of a ring of WGS 84 degrees, rounded to 1e-7 degrees (about a
    centimetre); the mean of its points when it has no area. Planar in degrees, which is close
    enough for a car park."""
    points = ring[:-1] if len(ring) > 1 and ring[0] == ring[-1] else ring
    lon0, lat0 = points[0]
    twice_area = cx = cy = 0.0
    for (x1, y1), (x2, y2) in zip(points, [*points[1:], points[0]], strict=True):
        x1, y1, x2, y2 = x1 - lon0, y1 - lat0, x2 - lon0, y2 - lat0
        cross = x1 * y2 - x2 * y1
        twice_area += cross
        cx += (x1 + x2) * cross
        cy += (y1 + y2) * cross
    if abs(twice_area) < 1e-18:
        lon = sum(p[0] for p in points) / len(points)
        lat = sum(p[1] for p in points) / len(points)
    else:
        lon, lat = lon0 + cx / (3.0 * twice_area), lat0 + cy / (3.0 * twice_area)
    return round(lon, 7), round(lat, 7)


def closed_ring(points: list[list[float]]) -> list[list[float]] | None:
    """``points`` as a closed ring (first point repeated last), None with fewer than 3 points
    or any point out of range."""
    if any(not valid_position(lon, lat) for lon, lat in points):
        return None
    if points and points[0] != points[-1]:
        points = [*points, points[0]]
    return points if len(points) >= 4 else None
