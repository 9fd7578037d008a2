"""Car-park feeds (SPDP, DATEX II) into car parks, counter sensors and counter observations.

:class:`FeedImporter` takes what a feed reader gave (car parks and statuses, see
:mod:`arserver.ingest.parking_feeds`; described here by the protocols :class:`CarParkLike`,
:class:`StatusLike` and :class:`FeedBatchLike`, since services sit below ingest) and stores it
through the services that own each kind of change:

- each car park becomes a place of kind ``car_park`` (:meth:`ParkingService.upsert_car_park`),
  with the feed's id (``"spdp:<identifier>"``, ``"datex2:<id>"``, unchanged), name, capacity,
  point or area and operator;
- each car park gets a counter sensor whose id is the car park's id (the readers' prefix
  already makes it a valid sensor id: 1 to 100 of ``A-Z a-z 0-9 . _ : -``; a car park whose id
  is not one is refused and named in the problems), with one datastream of kind
  ``free_spaces`` and unit ``{spaces}``, registered once (:class:`SensorService`). Car parks
  and their counters are readable by the same roles as every place and sensor: neither has a
  visibility of its own;
- each status becomes one observation of that datastream at the status time, through
  :class:`ObservationWriter` (the only observation write path; duplicates, same sensor and
  time, are counted and not stored again, so importing one document twice stores nothing
  twice), after its capacity and opening status went to :meth:`ParkingService.set_status`.
  Counts are stored as published (below zero and above capacity included); the parking
  service clamps and flags them.

A status whose car park is neither in the batch nor stored already is skipped and counted
(``unknown``): a feed status carries no position, so such a car park cannot be placed. A car
park or status that cannot be used is named in ``problems`` and never stops the others.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy.exc import DataError, IntegrityError

from arserver.errors import ArserverError, ConflictError, InputError
from arserver.services.observations import ObservationWriter
from arserver.services.parking import NewPlace, ParkingService
from arserver.services.sensors import SensorService
from arserver.store import parking as places_store
from arserver.store.parking import COUNTER_KIND, PlaceRow
from arserver.store.sensors import streams_of
from arserver.store.snapshot import snapshot

log = logging.getLogger(__name__)

#: The unit of the counter datastreams (UCUM annotation: a count of spaces).
COUNTER_UNIT = "{spaces}"
#: The ids a counter sensor (and so a feed car park) may have.
COUNTER_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
#: At most this many problem lines are kept in a summary; the rest are only counted.
MAX_PROBLEMS = 100
#: Observations are written in batches of at most this many.
WRITE_BATCH = 1000


class CarParkLike(Protocol):
    """A car park as a feed reader describes it (``CarParkInfo``): WGS 84 degrees, ``area`` a
    closed outer ring, ``capacity`` in spaces."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def lon(self) -> float: ...
    @property
    def lat(self) -> float: ...
    @property
    def capacity(self) -> int | None: ...
    @property
    def area(self) -> list[list[float]] | None: ...
    @property
    def operator(self) -> str | None: ...


class StatusLike(Protocol):
    """A car park's status (``CarParkStatus``): ``time`` timezone-aware, ``vacant`` free spaces
    as published, ``capacity`` and ``open`` None when the status does not say."""

    @property
    def id(self) -> str: ...
    @property
    def time(self) -> datetime: ...
    @property
    def vacant(self) -> int | None: ...
    @property
    def capacity(self) -> int | None: ...
    @property
    def open(self) -> bool | None: ...


class FeedBatchLike(Protocol):
    """What one read of a feed gave (``FeedBatch``)."""

    @property
    def car_parks(self) -> Sequence[CarParkLike]: ...
    @property
    def statuses(self) -> Sequence[StatusLike]: ...
    @property
    def problems(self) -> Sequence[str]: ...


@dataclass
class FeedSummary:
    """What one import did. Car parks: ``created``, ``updated``, ``unchanged``, ``failed``
    (refused: named in ``problems``). Statuses: ``stored``, ``duplicates`` (stored before),
    ``rejected`` (refused by the observation checks, e.g. too old for the raw retention or
    dated in the future), ``unknown`` (no such car park: skipped), ``no_count`` (a status
    without a count: only its capacity and opening were applied). ``problems``: the reader's
    lines and the import's, at most :data:`MAX_PROBLEMS`, then a line saying how many more."""

    source: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    unknown: int = 0
    no_count: int = 0
    problems: list[str] = field(default_factory=list)
    _dropped: int = field(default=0, repr=False)

    def note(self, line: str) -> None:
        if line.startswith("... and ") and line.endswith(" more problems"):
            try:
                self._dropped += int(line.split()[2])
                return
            except ValueError:
                pass
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(line)
        else:
            self._dropped += 1

    @property
    def problem_lines(self) -> list[str]:
        if self._dropped:
            return [*self.problems, f"... and {self._dropped} more problems"]
        return list(self.problems)

    @property
    def problem_count(self) -> int:
        return len(self.problems) + self._dropped

    def line(self) -> str:
        """One line for people: what was stored and what was skipped."""
        parks = self.created + self.updated + self.unchanged
        text = (
            f"{self.source}: {parks} car parks ({self.created} new, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.failed} refused); counts: {self.stored} stored, "
            f"{self.duplicates} duplicates, {self.rejected} rejected, {self.unknown} of unknown "
            "car parks skipped"
        )
        if self.no_count:
            text += f", {self.no_count} statuses without a count"
        return f"{text}; {self.problem_count} problems"

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "car_parks": {
                "created": self.created,
                "updated": self.updated,
                "unchanged": self.unchanged,
                "failed": self.failed,
            },
            "counts": {
                "stored": self.stored,
                "duplicate": self.duplicates,
                "rejected": self.rejected,
                "unknown_car_park": self.unknown,
                "without_count": self.no_count,
            },
            "problems": self.problem_lines,
        }


class FeedImporter:
    """Imports feed batches (see the module docstring). ``writer`` should be built with
    ``parking=`` so that the car parks' occupancy is published as their counts arrive."""

    def __init__(
        self, parking: ParkingService, sensors: SensorService, writer: ObservationWriter
    ) -> None:
        self.parking = parking
        self.sensors = sensors
        self.writer = writer

    def capacities(self, source: str | None = None) -> dict[str, int]:
        """Car-park id -> capacity of the stored car parks (of ``source``, when given): what a
        DATEX II status publication read on its own needs to turn occupied spaces into free
        ones."""
        with snapshot(self.parking.engine) as connection:
            rows = places_store.list_places(connection, kind="car_park")
        return {
            row["id"]: row["capacity"]
            for row in rows
            if row["capacity"] is not None and (source is None or row["source"] == source)
        }

    def import_batch(self, batch: FeedBatchLike, source: str) -> FeedSummary:
        """Store ``batch``'s car parks, counters and counts; ``source`` ("spdp", "datex2") is
        recorded on the car parks. Raises only when the database fails as a whole."""
        summary = FeedSummary(source)
        for line in batch.problems:
            summary.note(line)
        ids = {c.id for c in batch.car_parks} | {s.id for s in batch.statuses}
        places = self._stored_places(ids)
        with_counter = self._counter_sensors(ids)
        seen: set[str] = set()
        for info in batch.car_parks:
            if info.id in seen:
                continue
            seen.add(info.id)
            try:
                self._car_park(info, source, places, with_counter, summary)
            except (ArserverError, DataError, IntegrityError) as exc:
                summary.failed += 1
                summary.note(f"{info.id}: car park refused: {_reason(exc)}")
                places.pop(info.id, None)
        self._statuses(batch.statuses, places, with_counter, summary)
        return summary

    # -- car parks ----------------------------------------------------------------------------

    def _stored_places(self, ids: set[str]) -> dict[str, PlaceRow]:
        rows: dict[str, PlaceRow] = {}
        with snapshot(self.parking.engine) as connection:
            for place_id in sorted(ids):
                row = places_store.get_place(connection, place_id)
                if row is not None:
                    rows[place_id] = row
        return rows

    def _counter_sensors(self, ids: set[str]) -> dict[str, bool]:
        """Sensor id -> whether it has a ``free_spaces`` datastream, for the ids that exist."""
        wanted = {i for i in ids if COUNTER_ID.fullmatch(i)}
        with snapshot(self.parking.engine) as connection:
            streams, _info = streams_of(connection, wanted)
        return {sensor: COUNTER_KIND in kinds for sensor, kinds in streams.items()}

    def _car_park(
        self,
        info: CarParkLike,
        source: str,
        places: dict[str, PlaceRow],
        with_counter: dict[str, bool],
        summary: FeedSummary,
    ) -> None:
        if not COUNTER_ID.fullmatch(info.id):
            raise InputError(
                "its id cannot name a counter sensor (1 to 100 of A-Z a-z 0-9 . _ : -)"
            )
        existing = places.get(info.id)
        if existing is not None and (
            existing["kind"] != "car_park" or existing["counter_sensor"] not in (None, info.id)
        ):
            raise ConflictError(f"a parking place {info.id!r} exists that is not this car park")
        self._ensure_counter(info, source, with_counter)
        capacity = info.capacity
        if capacity is None and existing is not None:  # known from a status: kept
            capacity = existing["capacity"]
        new = NewPlace(
            kind="car_park",
            id=info.id,
            name=info.name.strip() or info.id,
            capacity=capacity,
            location=[info.lon, info.lat],
            area=info.area,
            counter=info.id,
            operator=info.operator,
            source=source,
        )
        if existing is not None and _same(existing, new):
            summary.unchanged += 1
            return
        try:
            row, created = self.parking.upsert_car_park(new)
        except InputError as exc:
            if new.area is None:
                raise
            summary.note(f"{info.id}: area left out: {exc}")
            row, created = self.parking.upsert_car_park(replace(new, area=None))
        places[info.id] = row
        if created:
            summary.created += 1
        else:
            summary.updated += 1

    def _ensure_counter(
        self, info: CarParkLike, source: str, with_counter: dict[str, bool]
    ) -> None:
        """The car park's counter sensor, registered when it does not exist yet."""
        has_stream = with_counter.get(info.id)
        if has_stream is None:
            values = {
                "id": info.id,
                "name": (info.name.strip() or info.id)[:200],
                "owner": info.operator[:200] if info.operator else None,
                "purpose": f"free spaces of a car park, from its {source} feed",
            }
            try:
                self.sensors.register(
                    values, [(COUNTER_KIND, COUNTER_UNIT)], [info.lon, info.lat], None
                )
                has_stream = True
            except ConflictError:  # registered meanwhile
                has_stream = self._counter_sensors({info.id}).get(info.id, False)
            with_counter[info.id] = has_stream
        if not has_stream:
            raise ConflictError(
                f"sensor {info.id!r} exists without a {COUNTER_KIND} datastream, so it cannot "
                "count this car park"
            )

    # -- statuses -----------------------------------------------------------------------------

    def _statuses(
        self,
        statuses: Sequence[StatusLike],
        places: dict[str, PlaceRow],
        with_counter: dict[str, bool],
        summary: FeedSummary,
    ) -> None:
        items: list[dict[str, Any]] = []
        for status in statuses:
            place = places.get(status.id)
            if place is None or place["kind"] != "car_park":
                summary.unknown += 1
                summary.note(f"{status.id}: status skipped: no such car park (no static data)")
                continue
            try:
                self._apply_status(status, place, places)
            except (ArserverError, DataError, IntegrityError) as exc:
                summary.note(f"{status.id}: status not applied: {_reason(exc)}")
            if status.vacant is None:
                summary.no_count += 1
                continue
            if not with_counter.get(status.id):
                summary.rejected += 1
                summary.note(f"{status.id}: count skipped: the car park has no counter sensor")
                continue
            items.append(
                {
                    "sensor": status.id,
                    "kind": COUNTER_KIND,
                    "time": status.time.isoformat(),
                    "value": status.vacant,
                }
            )
        for start in range(0, len(items), WRITE_BATCH):
            chunk = items[start : start + WRITE_BATCH]
            result = self.writer.write(chunk)
            summary.stored += result.accepted
            summary.duplicates += result.duplicate
            summary.rejected += len(result.rejected)
            for rejection in result.rejected:
                sensor = chunk[rejection.index]["sensor"]
                summary.note(f"{sensor}: count refused ({rejection.cause}): {rejection.reason}")

    def _apply_status(
        self, status: StatusLike, place: PlaceRow, places: dict[str, PlaceRow]
    ) -> None:
        capacity = status.capacity
        is_open = status.open
        if (capacity is None or capacity == place["capacity"]) and (
            is_open is None or is_open == place["is_open"]
        ):
            return
        self.parking.set_status(status.id, capacity=capacity, is_open=is_open)
        changed: dict[str, Any] = {}
        if capacity is not None:
            changed["capacity"] = capacity
        if is_open is not None:
            changed["is_open"] = is_open
        places[status.id] = cast(PlaceRow, {**place, **changed})


def _same(row: PlaceRow, new: NewPlace) -> bool:
    """Whether storing ``new`` would leave ``row`` as it is (so nothing is written)."""
    location = list(new.location or [])
    return (
        row["name"] == new.name.strip()[:200]
        and row["capacity"] == new.capacity
        and [row["lon"], row["lat"]] == location[:2]
        and row["area"] == (list(map(list, new.area)) if new.area is not None else None)
        and row["operator"] == (new.operator[:200] if new.operator else None)
        and row["counter_sensor"] == new.counter
    )


def _reason(exc: Exception) -> str:
    """The message of a refusal; a database's own message is not shown."""
    if isinstance(exc, ArserverError):
        return str(exc)
    return "the database refused it (a value too long or malformed)"
