"""Parking zones and car parks: the only code that writes them and their occupancy history, and
the only code that publishes their live events (layer ``parking``, key ``parking:{id}``).

A **zone** is an area (outer ring, WGS 84) with a capacity and bays: the bay sensors it names,
or else the ``parking_bay`` sensors standing in its area. A **car park** is a point or an area
with a capacity and a counter: a sensor whose ``free_spaces`` datastream counts free spaces
(the feeds create one per car park, with the car park's id). Readings arrive through the
observation writer, which hands the sensors it stored to :meth:`ParkingService.observed`;
occupancy is computed by :mod:`arserver.insight.parking.occupancy`, stored as a history row,
and published with the place's forecast. :meth:`ParkingService.refresh` does the same for every
place on a timer, so that a bay falling silent turns unknown without a reading, and writes a
row at least every :data:`HEARTBEAT` so the history has no holes where nothing changed.

Forecasts come from :class:`~arserver.insight.parking.forecast.Forecaster`, trained on the
last :data:`TRAINING_WINDOW` of history (:meth:`ParkingService.train`, run at start and then
every few hours by the server); until then, and for places with little history, its fallback
answers and says so in ``method``.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from shapely import Point, Polygon, STRtree
from sqlalchemy import Connection, Engine

from arserver.domain import Change
from arserver.errors import InputError, NotFoundError
from arserver.insight.parking.forecast import HORIZONS_MIN, Forecast, Forecaster
from arserver.insight.parking.occupancy import (
    BayState,
    Occupancy,
    Thresholds,
    car_park_occupancy,
    zone_occupancy,
)
from arserver.insight.parking.profile import weekly_profile
from arserver.insight.parking.series import Series
from arserver.live.bus import Bus
from arserver.store import parking as store
from arserver.store.parking import BAY_KIND, COUNTER_KIND, PlaceRow
from arserver.store.snapshot import snapshot
from tiles.crs import Transformer
from tiles.errors import CrsError, InvalidCoordinatesError, OutsideGridError

log = logging.getLogger(__name__)

KINDS = ("zone", "car_park")
#: A place gets a history row at least this often, changed or not.
HEARTBEAT = timedelta(minutes=15)
#: The history the forecaster learns from (and a fallback profile is built from).
TRAINING_WINDOW = timedelta(days=28)
#: How often the server recomputes every place, and retrains the forecaster.
REFRESH_INTERVAL = timedelta(minutes=1)
TRAIN_INTERVAL = timedelta(hours=6)
#: A listing reuses a place's state computed this recently (two refresh intervals).
REUSE_STATE_FOR = 2 * REFRESH_INTERVAL
#: The most vertices an area may have (a car park's outline, not a city's boundary).
MAX_VERTICES = 5_000
#: The most places one GeoJSON import may create.
MAX_IMPORT = 10_000
#: The ids a place may have (a feed's own id, such as ``spdp:<identifier>``, included).
PLACE_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


@dataclass(frozen=True)
class NewPlace:
    """A zone or car park as a client describes it. ``area``: outer ring of [x, y] in ``crs``
    (None: WGS 84 degrees); ``location``: the point where it is shown (default: the centre of
    its area); a car park needs one of the two. ``capacity`` in spaces (a zone without one
    has one space per bay). ``counter``: the sensor counting a car park's free spaces."""

    kind: str
    name: str
    id: str | None = None
    capacity: int | None = None
    area: Sequence[Sequence[float]] | None = None
    location: Sequence[float] | None = None
    crs: str | None = None
    bays: Sequence[str] | None = None
    counter: str | None = None
    operator: str | None = None
    source: str = "api"


@dataclass(frozen=True)
class PlaceState:
    """A place with its occupancy now and its forecasts (``forecasts`` empty when none)."""

    place: PlaceRow
    occupancy: Occupancy
    forecasts: list[Forecast] = field(default_factory=list)

    def to_json(self, *, with_area: bool = True) -> dict[str, Any]:
        place = self.place
        result: dict[str, Any] = {
            "id": place["id"],
            "kind": place["kind"],
            "name": place["name"],
            "capacity": place["capacity"],
            "location": [place["lon"], place["lat"]],
            "extent": [place["west"], place["south"], place["east"], place["north"]],
            "source": place["source"],
            "operator": place["operator"],
            "open": place["is_open"],
            "counter": place["counter_sensor"],
            "bays": place["bay_sensors"],
            "occupancy": self.occupancy.to_json(),
            "forecast": [forecast_json(f) for f in self.forecasts],
        }
        if with_area:
            result["area"] = place["area"]
        return result


def forecast_json(forecast: Forecast) -> dict[str, Any]:
    return {
        "horizon_min": forecast.horizon_min,
        "free": round(forecast.free, 1),
        "occupancy": round(forecast.occupancy, 4),
        "interval_80": [round(forecast.low, 1), round(forecast.high, 1)],
        "method": forecast.method,
    }


class ParkingService:
    """Zones, car parks and their occupancy (see the module docstring). ``now``: the clock
    (tests pass their own)."""

    def __init__(
        self,
        engine: Engine,
        bus: Bus | None = None,
        *,
        thresholds: Thresholds | None = None,
        now: Any = None,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.thresholds = thresholds or Thresholds()
        self._now = now or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._forecaster: Forecaster = Forecaster.fit({})
        self._trained_at: datetime | None = None
        self._last_row: dict[int, tuple[datetime, tuple[int, int, int, int]]] = {}
        self._published: dict[str, tuple[Any, ...]] = {}
        #: Each place's newest computed state and when it was computed, see :meth:`places`.
        self._latest: dict[str, tuple[datetime, PlaceState]] = {}
        #: Each place's recent history (expected free spaces), see :meth:`_current_series`.
        self._history: dict[str, Series] = {}

    def now(self) -> datetime:
        """The service's clock (timezone-aware UTC)."""
        moment: datetime = self._now()
        return moment

    # -- places -------------------------------------------------------------------------------

    def create(self, new: NewPlace) -> PlaceState:
        """Store a place; :class:`InputError` when it is not a usable one, ConflictError when
        the id is taken. Its first occupancy is published."""
        values = self._values(new)
        with self.engine.begin() as connection:
            store.insert_place(connection, values)
        return self._publish_places([values["id"]])[0]

    def upsert_car_park(self, new: NewPlace) -> tuple[PlaceRow, bool]:
        """Create or update (name, capacity, place, operator) a car park of a feed; returns it
        and whether it was new."""
        values = self._values(new)
        with self.engine.begin() as connection:
            existing = store.get_place(connection, values["id"])
            if existing is None:
                store.insert_place(connection, values)
            else:
                changes = {k: v for k, v in values.items() if k not in ("id", "kind", "source")}
                store.update_place(connection, values["id"], changes)
            row = store.get_place(connection, values["id"])
        assert row is not None
        return row, existing is None

    def set_status(self, place_id: str, *, capacity: int | None, is_open: bool | None) -> None:
        """What a feed's status says of a car park beyond its count (capacity, opening)."""
        values: dict[str, Any] = {}
        if capacity is not None and capacity >= 0:
            values["capacity"] = capacity
        if is_open is not None:
            values["is_open"] = is_open
        if values:
            with self.engine.begin() as connection:
                store.update_place(connection, place_id, values)

    def delete(self, place_id: str) -> None:
        with self.engine.begin() as connection:
            row = store.get_place(connection, place_id)
            if row is None or not store.delete_place(connection, place_id):
                raise NotFoundError(f"no parking place {place_id!r}")
        self._published.pop(place_id, None)
        with self._lock:
            self._history.pop(place_id, None)
            self._latest.pop(place_id, None)
        if self.bus is not None:
            self.bus.publish(
                [
                    Change(
                        "parking", f"parking:{place_id}", "occupancy", row["lon"], row["lat"],
                        None, time=_iso(self._now()), data={"place": place_id}, removed=True,
                    )
                ]
            )  # fmt: skip

    def get(self, place_id: str) -> PlaceState:
        with snapshot(self.engine) as connection:
            row = store.get_place(connection, place_id)
            if row is None:
                raise NotFoundError(f"no parking place {place_id!r}")
            return self._states(connection, [row], self._now())[0]

    def places(
        self,
        *,
        kind: str | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        limit: int = 1000,
    ) -> list[PlaceState]:
        """Places with their occupancy and forecasts, ordered by id. A place computed within
        :data:`REUSE_STATE_FOR` (by a reading, the timer or an earlier listing) and unchanged
        since is not computed again, so listing thousands of places stays cheap; in one
        process its state is then as new as the last reading, across processes at most a
        refresh interval behind."""
        now = self._now()
        with snapshot(self.engine) as connection:
            rows = store.list_places(connection, kind=kind, bbox=bbox, limit=limit)
            with self._lock:
                held = {row["id"]: self._latest.get(row["id"]) for row in rows}
            reusable = {
                place_id: state
                for place_id, (at, state) in ((k, v) for k, v in held.items() if v is not None)
                if now - at <= REUSE_STATE_FOR
            }
            stale = [
                row for row in rows if row["id"] not in reusable or reusable[row["id"]].place != row
            ]
            computed = {state.place["id"]: state for state in self._states(connection, stale, now)}
        with self._lock:
            for state in computed.values():
                self._latest[state.place["id"]] = (now, state)
        return [computed.get(row["id"]) or reusable[row["id"]] for row in rows]

    def import_geojson(
        self, document: Any, *, crs: str | None, capacity_property: str | None = None
    ) -> list[str]:
        """Zones from a GeoJSON FeatureCollection of Polygons (MultiPolygons: their largest
        part), each with a capacity property (``capacity_property``, else the first of
        ``capacity``, ``capaciteit``, ``parkeerplaatsen``, ``spaces``). The CRS is ``crs``,
        else the document's legacy ``crs`` member, else WGS 84. All or nothing: the ids of
        the zones created."""
        if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
            raise InputError("expected a GeoJSON FeatureCollection")
        features = document.get("features")
        if not isinstance(features, list) or not features:
            raise InputError("the FeatureCollection has no features")
        if len(features) > MAX_IMPORT:
            raise InputError(f"at most {MAX_IMPORT} zones per import, not {len(features)}")
        crs = crs or _legacy_crs(document)
        values = []
        for number, feature in enumerate(features, start=1):
            try:
                values.append(self._values(_zone_of_feature(feature, crs, capacity_property)))
            except InputError as exc:
                raise InputError(f"feature {number}: {exc}") from None
        with self.engine.begin() as connection:
            for value in values:
                store.insert_place(connection, value)
        ids = [v["id"] for v in values]
        self._publish_places(ids)
        return ids

    def _values(self, new: NewPlace) -> dict[str, Any]:
        if new.kind not in KINDS:
            raise InputError(f"kind must be one of {', '.join(KINDS)}")
        if new.id is not None and not PLACE_ID.fullmatch(new.id):
            raise InputError("a place id is 1 to 100 of A-Z a-z 0-9 . _ : -")
        if not new.name.strip():
            raise InputError("a parking place needs a name")
        if new.capacity is not None and not 0 <= new.capacity <= 1_000_000:
            raise InputError("capacity must be between 0 and 1000000 spaces")
        ring = _ring_wgs84(new.area, new.crs) if new.area is not None else None
        if new.location is not None:
            point = _point_wgs84(new.location, new.crs)
        elif ring is not None:
            centre = Polygon(ring).representative_point()
            point = (float(centre.x), float(centre.y))
        else:
            raise InputError("a parking place needs an area or a location")
        lons = [p[0] for p in ring] if ring else [point[0]]
        lats = [p[1] for p in ring] if ring else [point[1]]
        if new.kind == "zone" and ring is None and not new.bays:
            raise InputError("a zone needs an area, or the bay sensors it has ('bays')")
        bays = list(dict.fromkeys(new.bays)) if new.bays else None
        if bays is not None and len(bays) > 10_000:
            raise InputError("at most 10000 bays per zone")
        return {
            "id": new.id or secrets.token_hex(8),
            "kind": new.kind,
            "name": new.name.strip()[:200],
            "capacity": new.capacity,
            "lon": point[0],
            "lat": point[1],
            "area": ring,
            "west": min(lons),
            "south": min(lats),
            "east": max(lons),
            "north": max(lats),
            "bay_sensors": bays,
            "counter_sensor": new.counter,
            "source": new.source,
            "operator": new.operator[:200] if new.operator else None,
        }

    # -- occupancy ----------------------------------------------------------------------------

    def observed(self, sensor_ids: set[str]) -> list[Change]:
        """Readings of these sensors were stored: the occupancy of the places they belong to
        is computed, stored and published (returns what was published). Never raises for a
        place's trouble: the readings are committed whatever happens here."""
        if not sensor_ids:
            return []
        with snapshot(self.engine) as connection:
            rows = store.places_of_sensors(connection, sensor_ids)
        if not rows:
            return []
        return self._publish_rows(rows, force=True)

    def refresh(self) -> list[Change]:
        """Every place again (silent bays turn unknown without a reading; the history gets its
        heartbeat row; forecasts move on). Publishes the places whose state changed."""
        with snapshot(self.engine) as connection:
            rows = store.list_places(connection)
        return self._publish_rows(rows, force=False)

    def current_changes(self) -> list[Change]:
        """The live state of every place, for a hub that starts."""
        with snapshot(self.engine) as connection:
            rows = store.list_places(connection)
            states = self._states(connection, rows, self._now())
        return [self._change(state) for state in states]

    def _publish_places(self, ids: list[str]) -> list[PlaceState]:
        with snapshot(self.engine) as connection:
            rows = [r for r in (store.get_place(connection, i) for i in ids) if r is not None]
        states = self._record(rows)
        self._emit(states, force=True)
        return states

    def _publish_rows(self, rows: list[PlaceRow], *, force: bool) -> list[Change]:
        states = self._record(rows)
        return self._emit(states, force=force)

    def _record(self, rows: list[PlaceRow]) -> list[PlaceState]:
        """Compute the places' occupancy and store a history row where it changed or its
        heartbeat is due."""
        now = self._now()
        with snapshot(self.engine) as connection:
            states = self._states(connection, rows, now, with_forecast=False)
        history = []
        with self._lock:
            for state in states:
                occupancy = state.occupancy
                counts = (
                    occupancy.capacity, occupancy.occupied, occupancy.free, occupancy.unknown
                )  # fmt: skip
                last = self._last_row.get(state.place["pk"])
                if last is not None and last[1] == counts and now - last[0] < HEARTBEAT:
                    continue
                self._last_row[state.place["pk"]] = (now, counts)
                history.append(
                    {
                        "place_pk": state.place["pk"], "time": now,
                        "capacity": float(counts[0]), "occupied": float(counts[1]),
                        "free": float(counts[2]), "unknown": float(counts[3]),
                    }
                )  # fmt: skip
        if history:
            with self.engine.begin() as connection:
                store.add_occupancy(connection, history)
        with snapshot(self.engine) as connection:
            forecasts = self._forecasts(connection, states, now)
        states = [replace(s, forecasts=forecasts.get(s.place["id"], [])) for s in states]
        with self._lock:
            for state in states:
                self._latest[state.place["id"]] = (now, state)
        return states

    def _emit(self, states: list[PlaceState], *, force: bool) -> list[Change]:
        changes = []
        for state in states:
            change = self._change(state)
            signature = (
                tuple(sorted((k, repr(v)) for k, v in change.data.items() if k != "fresh")),
            )
            if not force and self._published.get(state.place["id"]) == signature:
                continue
            self._published[state.place["id"]] = signature
            changes.append(change)
        if changes and self.bus is not None:
            self.bus.publish(changes)
        return changes

    def _change(self, state: PlaceState) -> Change:
        place, occupancy = state.place, state.occupancy
        data: dict[str, Any] = {
            "place": place["id"],
            "place_kind": place["kind"],
            "name": place["name"],
            "value": occupancy.rate,
            **occupancy.to_json(),
            "fresh": occupancy.time.isoformat() if occupancy.time else None,
            "forecast": [forecast_json(f) for f in state.forecasts],
        }
        data.pop("time")
        for forecast in state.forecasts:
            data[f"forecast_{forecast.horizon_min}m"] = round(forecast.occupancy, 4)
        moment = occupancy.time or self._now()
        return Change(
            "parking", f"parking:{place['id']}", "occupancy", place["lon"], place["lat"], None,
            time=_iso(moment), data=data,
        )  # fmt: skip

    def _states(
        self,
        connection: Connection,
        rows: list[PlaceRow],
        now: datetime,
        *,
        with_forecast: bool = True,
    ) -> list[PlaceState]:
        members = self._bays(connection, [r for r in rows if r["kind"] == "zone"])
        bay_ids = sorted({bay for bays in members.values() for bay in bays})
        bays = {
            r.sensor_id: BayState(r.sensor_id, r.value, r.time, r.unchanged_since)
            for r in store.bay_states(connection, bay_ids)
        }
        counters = store.counter_readings(
            connection, [r["counter_sensor"] for r in rows if r["counter_sensor"]]
        )
        states = []
        for row in rows:
            if row["kind"] == "zone":
                occupancy = zone_occupancy(
                    row["capacity"], [bays[b] for b in members[row["id"]]], now, self.thresholds
                )
            else:
                time, vacant = counters.get(row["counter_sensor"] or "", (None, None))
                occupancy = car_park_occupancy(
                    row["capacity"], vacant, time, now, self.thresholds, is_open=row["is_open"]
                )
            states.append(PlaceState(row, occupancy))
        if with_forecast:
            forecasts = self._forecasts(connection, states, now)
            states = [replace(s, forecasts=forecasts.get(s.place["id"], [])) for s in states]
        return states

    def _bays(self, connection: Connection, zones: list[PlaceRow]) -> dict[str, list[str]]:
        """{zone id: its bay sensor ids}: the named ones, or the bay sensors in its area."""
        result: dict[str, list[str]] = {}
        spatial = [z for z in zones if z["bay_sensors"] is None and z["area"]]
        for zone in zones:
            result[zone["id"]] = list(zone["bay_sensors"] or [])
        if not spatial:
            return result
        west = min(z["west"] for z in spatial)
        south = min(z["south"] for z in spatial)
        east = max(z["east"] for z in spatial)
        north = max(z["north"] for z in spatial)
        candidates = store.bay_sensors_in(connection, (west, south, east, north))
        if not candidates:
            return result
        tree = STRtree([Point(lon, lat) for _id, lon, lat in candidates])
        for zone in spatial:
            polygon = Polygon(zone["area"] or [])
            hits = tree.query(polygon, predicate="covers")
            result[zone["id"]] = sorted(candidates[int(i)][0] for i in hits)
        return result

    # -- insight ------------------------------------------------------------------------------

    def history(
        self, place_id: str, *, bucket_s: int, start: datetime | None, end: datetime | None
    ) -> list[dict[str, Any]]:
        with snapshot(self.engine) as connection:
            row = store.get_place(connection, place_id)
            if row is None:
                raise NotFoundError(f"no parking place {place_id!r}")
            return store.occupancy_buckets(connection, row["pk"], bucket_s, start, end)

    def profile(self, place_id: str) -> dict[str, Any]:
        """The place's weekly profile (15-minute slots, Europe/Amsterdam) and peak times, from
        the last :data:`TRAINING_WINDOW` of history."""
        now = self._now()
        with snapshot(self.engine) as connection:
            row = store.get_place(connection, place_id)
            if row is None:
                raise NotFoundError(f"no parking place {place_id!r}")
            series = self._load_series(connection, [row], now).get(row["id"])
        if series is None or len(series.times) == 0:
            return {"place": place_id, "days": None, "peaks": [], "samples": 0}
        profile = weekly_profile(series)
        return {
            "place": place_id,
            "samples": len(series.times),
            "from": datetime.fromtimestamp(float(series.times[0]), UTC).isoformat(),
            "to": datetime.fromtimestamp(float(series.times[-1]), UTC).isoformat(),
            **profile.to_json(),
            "peaks": [
                {"day": day, "time": clock, "occupancy": round(rate, 4)}
                for day, clock, rate in profile.peaks(5)
            ],
        }

    def train(self) -> int:
        """Fit the forecaster on every place's recent history; returns the number of places
        it learnt from. Forecasts keep coming from the previous model while this runs; the
        histories read become the ones forecasts go on from."""
        now = self._now()
        with snapshot(self.engine) as connection:
            rows = store.list_places(connection)
            series = self._load_series(connection, rows, now)
        model = Forecaster.fit(series, until=now.timestamp())
        with self._lock:
            self._forecaster = model
            self._trained_at = now
            self._history = dict(series)
        return len(series)

    @property
    def trained_at(self) -> datetime | None:
        return self._trained_at

    def run(self, stop: threading.Event) -> None:
        """The server's loop until ``stop``: train at once and then every
        :data:`TRAIN_INTERVAL`, refresh every :data:`REFRESH_INTERVAL`. Never raises."""
        next_training = datetime.min.replace(tzinfo=UTC)
        while not stop.is_set():
            try:
                if self._now() >= next_training:
                    self.train()
                    next_training = self._now() + TRAIN_INTERVAL
                self.refresh()
            except Exception:  # a database outage: try again at the next turn
                log.exception("parking refresh failed")
            stop.wait(REFRESH_INTERVAL.total_seconds())

    def _load_series(
        self, connection: Connection, rows: list[PlaceRow], now: datetime
    ) -> dict[str, Series]:
        """Each place's history over :data:`TRAINING_WINDOW` as expected free spaces: a car
        park's from its counter's readings (15-minute means, so backfilled and imported
        counts count), a zone's from its occupancy rows."""
        counted = {
            row["counter_sensor"]: row
            for row in rows
            if row["kind"] == "car_park" and row["counter_sensor"] and (row["capacity"] or 0) > 0
        }
        result = self._occupancy_series(
            connection, [r for r in rows if r["counter_sensor"] not in counted], now
        )
        readings = store.counter_history(connection, list(counted), now - TRAINING_WINDOW)
        for sensor, points in readings.items():
            row = counted[sensor]
            times, free = zip(*points, strict=True)
            result[row["id"]] = Series.build(times, free, float(row["capacity"] or 0))
        return result

    def _occupancy_series(
        self, connection: Connection, rows: list[PlaceRow], now: datetime
    ) -> dict[str, Series]:
        by_pk = {row["pk"]: row["id"] for row in rows}
        if not by_pk:
            return {}
        history = store.occupancy_rows(connection, list(by_pk), now - TRAINING_WINDOW)
        result: dict[str, Series] = {}
        for pk, entries in history.items():
            times, free, capacity = [], [], 0.0
            for time, cap, occupied, free_known, _unknown in entries:
                known = occupied + free_known
                if known <= 0 or cap <= 0:
                    continue
                times.append(time.timestamp())
                free.append(cap * free_known / known)
                capacity = cap
            if times:
                result[by_pk[pk]] = Series.build(
                    np.asarray(times, dtype=np.float64), np.asarray(free), capacity
                )
        return result

    def _current_series(
        self, connection: Connection, states: list[PlaceState], now: datetime
    ) -> dict[str, Series]:
        """The history of each (known) place up to now, kept in memory between trainings:
        loaded once per place, then extended with each new reading of a car park's counter,
        and with the occupancy of a zone at most once a minute (and as of now)."""
        with self._lock:
            missing = [s.place for s in states if s.place["id"] not in self._history]
        loaded = self._load_series(connection, missing, now) if missing else {}
        origin = now.timestamp()
        result: dict[str, Series] = {}
        with self._lock:
            for state in states:
                place_id, occupancy = state.place["id"], state.occupancy
                capacity = float(occupancy.capacity)
                held = self._history.get(place_id) or loaded.get(place_id)
                if state.place["kind"] == "car_park" and occupancy.time is not None:
                    at = occupancy.time.timestamp()
                else:
                    at = origin
                free = occupancy.expected_free
                assert free is not None
                if held is None or held.times.size == 0 or at >= held.times[-1] + 60.0:
                    held = _appended(held, at, free, capacity, origin)
                self._history[place_id] = held
                result[place_id] = _with_now(held, origin, free, capacity) if at == origin else held
        return result

    def _forecasts(
        self, connection: Connection, states: list[PlaceState], now: datetime
    ) -> dict[str, list[Forecast]]:
        """Forecasts of the places that are known now; never raises (a failing model leaves
        the places without a forecast, and says so in the log)."""
        known = [s for s in states if s.occupancy.rate is not None and s.occupancy.capacity > 0]
        if not known:
            return {}
        try:
            items = self._current_series(connection, known, now)
            with self._lock:
                model = self._forecaster
            return model.forecast_many(items, now.timestamp())
        except Exception:
            log.exception("parking forecasts failed")
            return {}


def _appended(
    series: Series | None, at: float, free: float, capacity: float, origin: float
) -> Series:
    """``series`` with the point (``at``, ``free``) and without what lies beyond
    :data:`TRAINING_WINDOW` before ``origin``."""
    if series is None:
        return Series.build(np.asarray([at]), np.asarray([free]), capacity)
    keep = series.times >= origin - TRAINING_WINDOW.total_seconds()
    return Series.build(
        np.append(series.times[keep], at), np.append(series.free[keep], free), capacity
    )


def _with_now(series: Series, origin: float, free: float, capacity: float) -> Series:
    """The series with the occupancy of now as its newest value."""
    keep = series.times < origin
    return Series.build(
        np.append(series.times[keep], origin), np.append(series.free[keep], free), capacity
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _point_wgs84(location: Sequence[float], crs: str | None) -> tuple[float, float]:
    if len(location) < 2:
        raise InputError("a location is [lon, lat] (or x, y in crs)")
    ring = _ring_wgs84([location[:2]], crs, closed=False)
    return ring[0][0], ring[0][1]


def _ring_wgs84(
    area: Sequence[Sequence[float]], crs: str | None, *, closed: bool = True
) -> list[list[float]]:
    """An outer ring as [[lon, lat], ...] in WGS 84, closed; refused when it is not a valid
    area of at most :data:`MAX_VERTICES` points."""
    if not isinstance(area, Sequence) or len(area) > MAX_VERTICES:
        raise InputError(f"an area is a ring of at most {MAX_VERTICES} [x, y] points")
    try:
        xs = np.asarray([float(p[0]) for p in area], dtype=np.float64)
        ys = np.asarray([float(p[1]) for p in area], dtype=np.float64)
    except (TypeError, ValueError, IndexError):
        raise InputError("an area is a list of [x, y] points") from None
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise InputError("coordinates must be finite numbers")
    if crs is not None:
        try:
            xs, ys, _ = Transformer.from_crs(crs, "EPSG:4258").transform(xs, ys, None)
        except (CrsError, OutsideGridError, InvalidCoordinatesError) as exc:
            raise InputError(f"area in {crs}: {exc}") from None
    if not ((xs >= -180).all() and (xs <= 180).all() and (ys >= -90).all() and (ys <= 90).all()):
        raise InputError("longitudes must lie within -180..180 and latitudes within -90..90")
    ring = [[float(x), float(y)] for x, y in zip(xs, ys, strict=True)]
    if not closed:
        return ring
    if len(ring) >= 2 and ring[0] == ring[-1]:
        ring = ring[:-1]
    if len(ring) < 3:
        raise InputError("an area needs at least 3 distinct points")
    polygon = Polygon(ring)
    if not polygon.is_valid or polygon.area <= 0 or math.isnan(polygon.area):
        raise InputError("the area's ring crosses itself or encloses nothing")
    return [*ring, ring[0]]


def _legacy_crs(document: Mapping[str, Any]) -> str | None:
    """The EPSG code of a GeoJSON 2008 ``crs`` member (None: WGS 84, or none given)."""
    member = document.get("crs")
    properties = member.get("properties") if isinstance(member, dict) else None
    name = properties.get("name") if isinstance(properties, dict) else None
    if not isinstance(name, str):
        return None
    code = name.rsplit(":", 1)[-1]
    if code in ("CRS84", "4326"):
        return None
    return f"EPSG:{code}" if code.isdigit() else None


_CAPACITY_NAMES = ("capacity", "capaciteit", "parkeerplaatsen", "spaces")


def _zone_of_feature(feature: Any, crs: str | None, capacity_property: str | None) -> NewPlace:
    """The zone of a GeoJSON Feature; InputError for any shape that is not a usable one."""
    try:
        return _zone_of_checked_feature(feature, crs, capacity_property)
    except (TypeError, ValueError, AttributeError, IndexError, OverflowError):
        raise InputError("not a Polygon or MultiPolygon Feature of [x, y] positions") from None


def _zone_of_checked_feature(
    feature: Any, crs: str | None, capacity_property: str | None
) -> NewPlace:
    if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
        raise InputError("not a Feature with a geometry")
    geometry = feature["geometry"]
    properties = feature.get("properties") or {}
    if not isinstance(properties, dict):
        raise InputError("properties must be an object")
    coordinates = geometry.get("coordinates")
    if geometry.get("type") == "Polygon" and isinstance(coordinates, list) and coordinates:
        ring = coordinates[0]
    elif geometry.get("type") == "MultiPolygon" and isinstance(coordinates, list) and coordinates:
        parts = [p[0] for p in coordinates if isinstance(p, list) and p]
        if not parts:
            raise InputError("an empty MultiPolygon")
        ring = max(parts, key=lambda r: abs(Polygon([p[:2] for p in r]).area) if len(r) > 2 else 0)
    else:
        raise InputError("zones are Polygons or MultiPolygons")
    names = (capacity_property,) if capacity_property else _CAPACITY_NAMES
    capacity = next((properties[n] for n in names if properties.get(n) is not None), None)
    if capacity is None:
        raise InputError(f"no capacity (property {' or '.join(names)})")
    whole = isinstance(capacity, int) or (
        isinstance(capacity, float) and math.isfinite(capacity) and capacity.is_integer()
    )
    if isinstance(capacity, bool) or not whole or not 0 <= capacity <= 1_000_000:
        shown = repr(capacity)[:40]
        raise InputError(f"capacity must be a whole number of 0..1000000 spaces, not {shown}")
    name = properties.get("name") or properties.get("naam") or feature.get("id") or "zone"
    if not isinstance(name, str | int):
        raise InputError("a zone's name must be text")
    ident = feature.get("id")
    return NewPlace(
        kind="zone",
        name=str(name),
        id=str(ident)[:100] if isinstance(ident, str | int) and str(ident) else None,
        capacity=int(capacity),
        area=ring,
        crs=crs,
        source="geojson",
    )


__all__ = [
    "BAY_KIND",
    "COUNTER_KIND",
    "HORIZONS_MIN",
    "NewPlace",
    "ParkingService",
    "PlaceState",
]
