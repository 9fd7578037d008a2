"""Occupancy of a parking zone from its bay sensors, and of a car park from its counter: pure
functions, no I/O.

A bay sensor reports 1 (occupied) or 0 (free). A bay whose sensor has been silent for longer
than ``bay_silent_after``, or has reported the same value for longer than ``bay_stuck_after``
(a magnetometer frozen on "occupied" for days), counts as **unknown**, never as free: telling a
driver there is room where there may be none is the worse mistake. A zone's capacity not
covered by any sensor is unknown too. The occupancy rate is that of the bays that are known.

A counter reports free spaces. A count above the capacity or below zero is clamped to
0..capacity and flagged; a counter silent for longer than ``counter_silent_after`` makes the
whole car park unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    """When a bay or a counter stops being believed."""

    bay_silent_after: timedelta = timedelta(hours=12)
    bay_stuck_after: timedelta = timedelta(hours=72)
    counter_silent_after: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class BayState:
    """A bay sensor's newest reading: ``value`` 1 occupied / 0 free (None: never reported),
    ``time`` of that reading, ``unchanged_since`` the earliest time from which every reading
    had that value (timezone-aware UTC)."""

    sensor_id: str
    value: float | None
    time: datetime | None
    unchanged_since: datetime | None


@dataclass(frozen=True)
class Occupancy:
    """Occupancy of a place at ``now``. ``occupied + free + unknown == capacity`` (spaces);
    ``rate`` is occupied / (occupied + free), None when nothing is known; ``time`` the newest
    reading that counted (None: none). ``flags`` name what was doubtful: ``silent_bays``,
    ``stuck_bays``, ``uncovered`` (capacity without sensors), ``more_bays_than_capacity``,
    ``above_capacity``, ``below_zero``, ``silent_counter``, ``closed``, ``no_data``."""

    capacity: int
    occupied: int
    free: int
    unknown: int
    rate: float | None
    time: datetime | None
    flags: tuple[str, ...] = ()
    silent: tuple[str, ...] = ()  # bay sensor ids
    stuck: tuple[str, ...] = ()

    @property
    def expected_free(self) -> float | None:
        """Free spaces over the whole capacity if the unknown part is occupied like the known
        part (what the forecaster learns from); None when nothing is known."""
        if self.rate is None:
            return None
        return self.capacity * (1.0 - self.rate)

    def to_json(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "occupied": self.occupied,
            "free": self.free,
            "unknown": self.unknown,
            "occupancy": None if self.rate is None else round(self.rate, 4),
            "time": None if self.time is None else self.time.isoformat(),
            "flags": list(self.flags),
            "silent_bays": list(self.silent),
            "stuck_bays": list(self.stuck),
        }


def zone_occupancy(
    capacity: int | None, bays: list[BayState], now: datetime, thresholds: Thresholds
) -> Occupancy:
    """Occupancy of a zone of ``capacity`` spaces (None: one per bay) with these bays."""
    flags: list[str] = []
    occupied = free = 0
    silent: list[str] = []
    stuck: list[str] = []
    newest: datetime | None = None
    for bay in bays:
        if bay.value is None or bay.time is None:
            silent.append(bay.sensor_id)
            continue
        if now - bay.time > thresholds.bay_silent_after:
            silent.append(bay.sensor_id)
            continue
        since = bay.unchanged_since or bay.time
        if now - since > thresholds.bay_stuck_after:
            stuck.append(bay.sensor_id)
            continue
        if bay.value >= 0.5:
            occupied += 1
        else:
            free += 1
        newest = bay.time if newest is None or bay.time > newest else newest
    spaces = len(bays) if capacity is None else capacity
    if len(bays) > spaces:
        flags.append("more_bays_than_capacity")
        spaces = len(bays)
    if silent:
        flags.append("silent_bays")
    if stuck:
        flags.append("stuck_bays")
    if spaces > len(bays):
        flags.append("uncovered")
    known = occupied + free
    if known == 0:
        flags.append("no_data")
    return Occupancy(
        capacity=spaces,
        occupied=occupied,
        free=free,
        unknown=spaces - known,
        rate=occupied / known if known else None,
        time=newest,
        flags=tuple(flags),
        silent=tuple(sorted(silent)),
        stuck=tuple(sorted(stuck)),
    )


def car_park_occupancy(
    capacity: int | None,
    vacant: float | None,
    time: datetime | None,
    now: datetime,
    thresholds: Thresholds,
    *,
    is_open: bool | None = None,
) -> Occupancy:
    """Occupancy of a car park whose counter last said ``vacant`` free spaces at ``time``.
    Without a capacity the count itself is taken as one (nothing can be said of the rest)."""
    flags: list[str] = []
    if is_open is False:
        flags.append("closed")
    spaces = max(0, capacity) if capacity is not None else None
    if vacant is None or time is None or now - time > thresholds.counter_silent_after:
        flags.append("no_data" if vacant is None or time is None else "silent_counter")
        spaces = spaces or 0
        return Occupancy(spaces, 0, 0, spaces, None, time, tuple(flags))
    count = round(vacant)
    if count < 0:
        flags.append("below_zero")
        count = 0
    if spaces is None:
        spaces = count
    if count > spaces:
        flags.append("above_capacity")
        count = spaces
    occupied = spaces - count
    return Occupancy(
        capacity=spaces,
        occupied=occupied,
        free=count,
        unknown=0,
        rate=occupied / spaces if spaces else None,
        time=time,
        flags=tuple(flags),
    )
