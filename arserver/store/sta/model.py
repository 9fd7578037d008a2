"""The SensorThings entity types over the sensor tables.

Every registered sensor is a **Thing**, a **Sensor** (the instrument, described by the
register's sensor type) and, when it has a fixed location or the area it moves in, a
**Location** with one **HistoricalLocation** (since it was placed) and a **FeatureOfInterest**
(the place its observations are about); all of these share the sensor's integer key as
``@iot.id``. Each datastream is a **Datastream** (``@iot.id`` its own key) of the
**ObservedProperty** of its kind (one per kind, in ``observed_properties``), and each stored
observation an **Observation** (``@iot.id`` its key). Beyond the raw window, where retention
keeps hourly aggregates only, each aggregate is an Observation too, clearly marked: its
``phenomenonTime`` is the hour as an interval, its ``result`` the hour's mean, and its
``parameters`` say ``aggregate`` with the count, minimum and maximum; its id is negative. The
positions a mobile sensor reports with its observations are its **HistoricalLocations**, each
with a Location of its own (ids ``-(observation id)``), for as long as position retention keeps
them; the observations carry them in ``parameters.position`` too.

Each type is one or more SQL selects whose union it is (:attr:`EntityType.arms`: observations
are the raw ones and the aggregates), with the columns named here, the property paths that
filters and ``$orderby`` may use (:attr:`EntityType.columns`), its navigation properties, and
how a row becomes the entity's JSON. Callers without a token see only the entities of sensors
whose data is public (``public_only``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Float,
    Integer,
    RowMapping,
    Select,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
)

from arserver.store.schema import (
    datastreams,
    observation_hours,
    observations,
    observed_properties,
    sensors,
)

#: The observation type of every datastream: a number with a unit.
MEASUREMENT: Final = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
#: Hourly aggregates have ids ``-(datastream id * this + hours since 1970)``.
AGGREGATE_ID_STRIDE: Final = 10_000_000
#: Where the hours of aggregate ids are counted from.
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: What the UCUM codes of units are defined by.
UCUM: Final = "https://ucum.org/ucum"
#: Names of common UCUM codes (others are named by their code).
UNIT_NAMES: Final[Mapping[str, str]] = {
    "ug/m3": "microgram per cubic metre", "mg/m3": "milligram per cubic metre",
    "Cel": "degree Celsius", "K": "kelvin", "%": "percent", "dB": "decibel",
    "dB(A)": "decibel (A-weighted)", "m": "metre", "cm": "centimetre", "mm": "millimetre",
    "m/s": "metre per second", "km/h": "kilometre per hour", "hPa": "hectopascal",
    "Pa": "pascal", "lx": "lux", "W/m2": "watt per square metre", "ppm": "part per million",
    "ppb": "part per billion", "m3/h": "cubic metre per hour", "L/s": "litre per second",
    "1": "one", "{count}": "count", "{vehicle}": "vehicle", "V": "volt", "A": "ampere",
    "kW": "kilowatt", "kWh": "kilowatt hour", "mm/h": "millimetre per hour",
}  # fmt: skip
#: Definitions of common kinds in public vocabularies (EEA air-quality pollutants); others are
#: defined by this service's own term.
KIND_DEFINITIONS: Final[Mapping[str, str]] = {
    "no2": "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/8",
    "pm10": "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/5",
    "pm25": "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/6001",
    "o3": "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/7",
    "so2": "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/1",
    "co": "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/10",
    "nh3": "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/35",
}


@dataclass(frozen=True)
class Navigation:
    """A navigation property: the target type and how its rows relate to a source row (the
    target's ``target_column`` equals the source's ``source_column``)."""

    name: str
    target: str
    many: bool
    source_column: str
    target_column: str


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: there is one of each
class EntityType:
    """One SensorThings entity type (see the module's description)."""

    name: str
    plural: str
    #: The entity set as one or more SQL selects with the same columns ("arms", whose union
    #: it is), given ``public_only`` and the dialect name.
    arms: Callable[[bool, str], tuple[Select[Any], ...]]
    #: Property paths (``("unitOfMeasurement", "symbol")``) that filters and ``$orderby`` may
    #: use, with the column of :attr:`select` holding each.
    columns: Mapping[tuple[str, ...], str]
    #: The property holding a geometry (``location``, ``feature``, ``observedArea``), if any;
    #: the selectable then has ``lon``, ``lat``, ``h`` and ``area`` columns.
    geometry: str | None
    navigations: Mapping[str, Navigation]
    #: The entity's properties as JSON (no ``@iot`` annotations); ``root`` is the service
    #: root URL, for links inside properties.
    to_json: Callable[[RowMapping, str], dict[str, Any]]
    #: Every property ``$select`` may name, in the order entities list them.
    properties: tuple[str, ...]
    #: Columns that are never NULL: pages sorted by them alone continue after the last row
    #: (``$skiptoken``) instead of skipping rows again.
    keyset: frozenset[str] = frozenset({"id"})
    #: For an id, equalities on indexed columns that find it (ids computed from a key, such
    #: as the negative ids of aggregates and positions, are not indexed themselves).
    locate: Callable[[int], Mapping[str, Any]] | None = None


def iso_time(moment: datetime) -> str:
    """An instant as SensorThings writes it: ISO 8601 UTC with milliseconds and ``Z``."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def geometry_json(row: RowMapping) -> dict[str, Any] | None:
    """The GeoJSON geometry of a row with ``lon``, ``lat``, ``h`` and ``area`` columns."""
    if row["lon"] is not None and row["lat"] is not None:
        coordinates = [row["lon"], row["lat"]] + ([row["h"]] if row["h"] is not None else [])
        return {"type": "Point", "coordinates": coordinates}
    area: dict[str, Any] | None = row["area"]
    return area


def _one(
    build: Callable[[bool], Select[Any]],
) -> Callable[[bool, str], tuple[Select[Any], ...]]:
    """The arms of an entity set that is a single select."""
    return lambda public_only, _dialect: (build(public_only),)


def _visible(query: Select[Any], public_only: bool) -> Select[Any]:
    return query.where(sensors.c.public.is_(True)) if public_only else query


_PLACED = or_(sensors.c.lon.is_not(None), sensors.c.area.is_not(None))
_PLACE_COLUMNS = (sensors.c.lon, sensors.c.lat, sensors.c.h, sensors.c.area)


def _properties(row: RowMapping, names: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        value = row[name]
        if value is None:
            continue
        out[name] = iso_time(value) if isinstance(value, datetime) else value
    return out


# -- Thing --------------------------------------------------------------------------------------

_THING_PROPERTIES = (
    "sensor", "owner", "contact", "kvk", "sensor_type", "purpose", "themes", "project",
    "personal_data", "privacy_statement", "legal_ground", "placed_at", "removed_at",
)  # fmt: skip


def _things(public_only: bool) -> Select[Any]:
    return _visible(
        select(
            sensors.c.pk.label("id"), sensors.c.name,
            func.coalesce(sensors.c.purpose, sensors.c.name).label("description"),
            sensors.c.id.label("sensor"), sensors.c.owner, sensors.c.contact, sensors.c.kvk,
            sensors.c.sensor_type, sensors.c.purpose, sensors.c.themes, sensors.c.project,
            sensors.c.personal_data, sensors.c.privacy_statement, sensors.c.legal_ground,
            sensors.c.placed_at, sensors.c.removed_at,
        ),
        public_only,
    )  # fmt: skip


def _thing_json(row: RowMapping, _root: str) -> dict[str, Any]:
    return {
        "name": row["name"],
        "description": row["description"],
        "properties": _properties(row, _THING_PROPERTIES),
    }


THING = EntityType(
    name="Thing",
    plural="Things",
    arms=_one(_things),
    columns={
        ("id",): "id",
        ("name",): "name",
        ("description",): "description",
        **{("properties", name): name for name in _THING_PROPERTIES if name != "themes"},
    },
    geometry=None,
    navigations={
        "Locations": Navigation("Locations", "Location", True, "id", "thing_id"),
        "HistoricalLocations": Navigation(
            "HistoricalLocations", "HistoricalLocation", True, "id", "thing_id"
        ),
        "Datastreams": Navigation("Datastreams", "Datastream", True, "id", "thing_id"),
    },
    to_json=_thing_json,
    properties=("id", "name", "description", "properties"),
    keyset=frozenset({"id", "name", "description"}),
)


# -- Location, HistoricalLocation, FeatureOfInterest ------------------------------------------


def _place_description(kind: str) -> ColumnElement[Any]:
    return case(
        (sensors.c.lon.is_not(None), literal(f"{kind} of ") + sensors.c.name),
        else_=literal("The area in which ") + sensors.c.name + literal(" moves"),
    )


def _locations(public_only: bool) -> Select[Any]:
    return _visible(
        select(
            sensors.c.pk.label("id"), sensors.c.name,
            _place_description("The location").label("description"), *_PLACE_COLUMNS,
            sensors.c.pk.label("thing_id"), sensors.c.pk.label("owner_id"),
            cast(null(), BigInteger).label("observation_id"),
        ).where(_PLACED),
        public_only,
    )  # fmt: skip


def _place_json(key: str) -> Callable[[RowMapping, str], dict[str, Any]]:
    def to_json(row: RowMapping, _root: str) -> dict[str, Any]:
        return {
            "name": row["name"],
            "description": row["description"],
            "encodingType": "application/geo+json",
            key: geometry_json(row),
        }

    return to_json


def _first_position_at_its_time() -> ColumnElement[bool]:
    """True for the positioned observation that stands for its sensor's position at its time
    (a sensor with several datastreams sends the same position with each of them)."""
    other, other_stream = observations.alias("same_time"), datastreams.alias("same_sensor")
    earlier = (
        select(other.c.id)
        .join(other_stream, other_stream.c.id == other.c.datastream_id)
        .where(
            other_stream.c.sensor_pk == datastreams.c.sensor_pk,
            other.c.time == observations.c.time,
            other.c.lon.is_not(None),
            other.c.id < observations.c.id,
        )
    )
    return ~exists(earlier)


def _positions(public_only: bool) -> Select[Any]:
    """The positions a mobile sensor reported with its observations (kept as long as the
    position retention allows), as ``-(observation id)`` with the sensor and time."""
    return _visible(
        select(
            (-observations.c.id).label("position_id"), observations.c.id.label("observation_id"),
            observations.c.time,
            observations.c.lon, observations.c.lat, observations.c.h, sensors.c.pk,
            sensors.c.name,
        )
        .join(datastreams, datastreams.c.id == observations.c.datastream_id)
        .join(sensors, sensors.c.pk == datastreams.c.sensor_pk)
        .where(observations.c.lon.is_not(None), _first_position_at_its_time()),
        public_only,
    )  # fmt: skip


def _position_locations(public_only: bool) -> Select[Any]:
    """Where a mobile sensor was: a Location per reported position, reached through its
    HistoricalLocation (its Thing's own Locations stay its fixed place or area)."""
    position = _positions(public_only).subquery()
    return select(
        position.c.position_id.label("id"), position.c.name,
        (literal("A position of ") + position.c.name).label("description"), position.c.lon,
        position.c.lat, position.c.h, cast(null(), JSON).label("area"),
        cast(null(), Integer).label("thing_id"), position.c.pk.label("owner_id"),
        position.c.observation_id,
    )  # fmt: skip


def _locate_position(key: int) -> Mapping[str, Any]:
    """A reported position's id is ``-(observation id)``."""
    return {"observation_id": -key} if key < 0 else {}


def _location_arms(public_only: bool, _dialect: str) -> tuple[Select[Any], ...]:
    return (_locations(public_only), _position_locations(public_only))


def _position_history(public_only: bool) -> Select[Any]:
    position = _positions(public_only).subquery()
    return select(
        position.c.position_id.label("id"), position.c.time.label("time"),
        position.c.pk.label("thing_id"), position.c.position_id.label("location_id"),
        position.c.observation_id,
    )  # fmt: skip


def _historical_location_arms(public_only: bool, _dialect: str) -> tuple[Select[Any], ...]:
    return (_historical_locations(public_only), _position_history(public_only))


LOCATION = EntityType(
    name="Location",
    plural="Locations",
    arms=_location_arms,
    columns={("id",): "id", ("name",): "name", ("description",): "description"},
    geometry="location",
    navigations={
        # A Thing's Locations are its place (thing_id); every Location names its Thing.
        "Things": Navigation("Things", "Thing", True, "owner_id", "id"),
        "HistoricalLocations": Navigation(
            "HistoricalLocations", "HistoricalLocation", True, "id", "location_id"
        ),
    },
    to_json=_place_json("location"),
    properties=("id", "name", "description", "encodingType", "location"),
    locate=_locate_position,
)


def _historical_locations(public_only: bool) -> Select[Any]:
    return _visible(
        select(
            sensors.c.pk.label("id"),
            func.coalesce(sensors.c.placed_at, sensors.c.created_at).label("time"),
            sensors.c.pk.label("thing_id"), sensors.c.pk.label("location_id"),
            cast(null(), BigInteger).label("observation_id"),
        ).where(_PLACED),
        public_only,
    )  # fmt: skip


HISTORICAL_LOCATION = EntityType(
    name="HistoricalLocation",
    plural="HistoricalLocations",
    arms=_historical_location_arms,
    columns={("id",): "id", ("time",): "time"},
    geometry=None,
    navigations={
        "Thing": Navigation("Thing", "Thing", False, "thing_id", "id"),
        "Locations": Navigation("Locations", "Location", True, "location_id", "id"),
    },
    to_json=lambda row, _root: {"time": iso_time(row["time"])},
    properties=("id", "time"),
    keyset=frozenset({"id", "time"}),
    locate=_locate_position,
)


def _features(public_only: bool) -> Select[Any]:
    return _visible(
        select(
            sensors.c.pk.label("id"), sensors.c.name,
            _place_description("The place").label("description"), *_PLACE_COLUMNS,
        ),
        public_only,
    )  # fmt: skip


FEATURE_OF_INTEREST = EntityType(
    name="FeatureOfInterest",
    plural="FeaturesOfInterest",
    arms=_one(_features),
    columns={("id",): "id", ("name",): "name", ("description",): "description"},
    geometry="feature",
    navigations={
        "Observations": Navigation("Observations", "Observation", True, "id", "foi_id"),
    },
    to_json=_place_json("feature"),
    properties=("id", "name", "description", "encodingType", "feature"),
)


# -- Sensor, ObservedProperty, Datastream ------------------------------------------------------


def _sensors(public_only: bool) -> Select[Any]:
    return _visible(
        select(
            sensors.c.pk.label("id"), sensors.c.name,
            func.coalesce(
                sensors.c.sensor_type + literal(" sensor of ") + sensors.c.name,
                literal("The sensor of ") + sensors.c.name,
            ).label("description"),
            sensors.c.id.label("sensor"), sensors.c.sensor_type,
        ),
        public_only,
    )  # fmt: skip


def _sensor_json(row: RowMapping, root: str) -> dict[str, Any]:
    api = root.rsplit("/sta/", 1)[0]
    return {
        "name": row["name"],
        "description": row["description"],
        "encodingType": "application/json",
        "metadata": f"{api}/api/v1/sensors/{row['sensor']}",
        "properties": _properties(row, ("sensor", "sensor_type")),
    }


SENSOR = EntityType(
    name="Sensor",
    plural="Sensors",
    arms=_one(_sensors),
    columns={
        ("id",): "id",
        ("name",): "name",
        ("description",): "description",
        ("properties", "sensor"): "sensor",
        ("properties", "sensor_type"): "sensor_type",
    },
    geometry=None,
    navigations={"Datastreams": Navigation("Datastreams", "Datastream", True, "id", "sensor_id")},
    to_json=_sensor_json,
    properties=("id", "name", "description", "encodingType", "metadata", "properties"),
)


def _observed_properties(public_only: bool) -> Select[Any]:
    query = select(
        observed_properties.c.id, observed_properties.c.kind.label("name"),
        observed_properties.c.kind,
    )  # fmt: skip
    if public_only:
        shown = (
            select(datastreams.c.id)
            .join(sensors, sensors.c.pk == datastreams.c.sensor_pk)
            .where(datastreams.c.kind == observed_properties.c.kind, sensors.c.public.is_(True))
        )
        query = query.where(exists(shown))
    return query


def _observed_property_json(row: RowMapping, root: str) -> dict[str, Any]:
    kind = row["kind"]
    definition = KIND_DEFINITIONS.get(kind) or f"{root}/ObservedProperties({row['id']})"
    return {"name": kind, "definition": definition, "description": f"Observed {kind}"}


OBSERVED_PROPERTY = EntityType(
    name="ObservedProperty",
    plural="ObservedProperties",
    arms=_one(_observed_properties),
    columns={("id",): "id", ("name",): "name"},
    geometry=None,
    navigations={
        "Datastreams": Navigation("Datastreams", "Datastream", True, "id", "observed_property_id")
    },
    to_json=_observed_property_json,
    properties=("id", "name", "definition", "description"),
)


def _unit_name() -> ColumnElement[Any]:
    return case(dict(UNIT_NAMES), value=datastreams.c.unit, else_=datastreams.c.unit)


def _span(function: Any, column: Any, stream: Any) -> Any:
    """The first or last time of a datastream's raw observations or hourly aggregates (one
    index lookup each)."""
    return select(function(column)).where(stream == datastreams.c.id).scalar_subquery()


def _datastreams(public_only: bool) -> Select[Any]:
    o, hours = observations.c, observation_hours.c
    return _visible(
        select(
            datastreams.c.id, (sensors.c.name + literal(": ") + datastreams.c.kind).label("name"),
            (datastreams.c.kind + literal(" measured by ") + sensors.c.name).label("description"),
            datastreams.c.unit, _unit_name().label("unit_name"), datastreams.c.kind,
            sensors.c.id.label("sensor"), sensors.c.pk.label("thing_id"),
            sensors.c.pk.label("sensor_id"), observed_properties.c.id.label("observed_property_id"),
            *_PLACE_COLUMNS, _span(func.min, o.time, o.datastream_id).label("first_time"),
            _span(func.max, o.time, o.datastream_id).label("last_time"),
            _span(func.min, hours.start, hours.datastream_id).label("first_hour"),
            _span(func.max, hours.start, hours.datastream_id).label("last_hour"),
        )
        .join(sensors, sensors.c.pk == datastreams.c.sensor_pk)
        .join(observed_properties, observed_properties.c.kind == datastreams.c.kind),
        public_only,
    )  # fmt: skip


def _observed_area(row: RowMapping) -> dict[str, Any] | None:
    """The datastream's observed area: its sensor's point or area (a MultiPolygon area as
    its bounding Polygon, which every client reads)."""
    geometry = geometry_json(row)
    if geometry is not None and geometry.get("type") == "MultiPolygon":
        polygons = geometry["coordinates"]
        xs = [p[0] for polygon in polygons for ring in polygon for p in ring]
        ys = [p[1] for polygon in polygons for ring in polygon for p in ring]
        w, s, e, n = min(xs), min(ys), max(xs), max(ys)
        geometry = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    return geometry


def _datastream_json(row: RowMapping, _root: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": row["name"],
        "description": row["description"],
        "unitOfMeasurement": {
            "name": row["unit_name"],
            "symbol": row["unit"],
            "definition": UCUM,
        },
        "observationType": MEASUREMENT,
    }
    area = _observed_area(row)
    if area is not None:
        out["observedArea"] = area
    hour = timedelta(hours=1)
    starts = [t for t in (row["first_time"], row["first_hour"]) if t is not None]
    ends = [row["last_time"]] if row["last_time"] is not None else []
    ends += [row["last_hour"] + hour] if row["last_hour"] is not None else []
    if starts:
        span = f"{iso_time(min(starts))}/{iso_time(max(ends))}"
        out["phenomenonTime"] = span
        out["resultTime"] = span
    out["properties"] = {"kind": row["kind"], "sensor": row["sensor"]}
    return out


DATASTREAM = EntityType(
    name="Datastream",
    plural="Datastreams",
    arms=_one(_datastreams),
    columns={
        ("id",): "id",
        ("name",): "name",
        ("description",): "description",
        ("unitOfMeasurement", "symbol"): "unit",
        ("unitOfMeasurement", "name"): "unit_name",
        ("properties", "kind"): "kind",
        ("properties", "sensor"): "sensor",
    },
    geometry="observedArea",
    navigations={
        "Thing": Navigation("Thing", "Thing", False, "thing_id", "id"),
        "Sensor": Navigation("Sensor", "Sensor", False, "sensor_id", "id"),
        "ObservedProperty": Navigation(
            "ObservedProperty", "ObservedProperty", False, "observed_property_id", "id"
        ),
        "Observations": Navigation("Observations", "Observation", True, "id", "datastream_id"),
    },
    to_json=_datastream_json,
    properties=(
        "id",
        "name",
        "description",
        "unitOfMeasurement",
        "observationType",
        "observedArea",
        "phenomenonTime",
        "resultTime",
        "properties",
    ),
    keyset=frozenset({"id", "name", "description", "unit", "kind"}),
)


# -- Observation ---------------------------------------------------------------------------------


def _raw_observations(public_only: bool) -> Select[Any]:
    query = select(
        observations.c.id, observations.c.time.label("phenomenon_time"),
        observations.c.value.label("result"), observations.c.datastream_id,
        datastreams.c.sensor_pk.label("foi_id"), observations.c.lon, observations.c.lat,
        observations.c.h, cast(null(), BigInteger).label("count"),
        cast(null(), Float).label("minimum"), cast(null(), Float).label("maximum"),
    ).join(datastreams, datastreams.c.id == observations.c.datastream_id)  # fmt: skip
    return _visible_stream(query, public_only)


def _hourly_observations(public_only: bool, dialect: str) -> Select[Any]:
    """The hourly aggregates that retention left of readings beyond the raw window, as
    observations: the hour's mean, with its count, minimum and maximum. Their ids are
    negative: ``-(datastream id * 10,000,000 + hours since 1970)``."""
    hours = observation_hours.c
    hour_index: ColumnElement[Any]
    if dialect == "postgresql":
        hour_index = cast(func.extract("epoch", hours.start) / 3600, BigInteger)
    else:
        hour_index = cast(func.strftime("%s", hours.start), BigInteger) / 3600
    key = -(cast(hours.datastream_id, BigInteger) * AGGREGATE_ID_STRIDE + hour_index)
    query = select(
        key.label("id"), hours.start.label("phenomenon_time"),
        cast(hours.sum / hours.count, Float).label("result"), hours.datastream_id,
        datastreams.c.sensor_pk.label("foi_id"), cast(null(), Float).label("lon"),
        cast(null(), Float).label("lat"), cast(null(), Float).label("h"),
        hours.count.label("count"), hours.min.label("minimum"), hours.max.label("maximum"),
    ).join(datastreams, datastreams.c.id == hours.datastream_id)  # fmt: skip
    return _visible_stream(query, public_only)


def _visible_stream(query: Select[Any], public_only: bool) -> Select[Any]:
    if not public_only:
        return query
    return query.join(sensors, sensors.c.pk == datastreams.c.sensor_pk).where(
        sensors.c.public.is_(True)
    )


def _locate_aggregate(key: int) -> Mapping[str, Any]:
    """An hourly aggregate's id is ``-(datastream id * stride + hours since 1970)``."""
    if key >= 0:
        return {}
    stream, hours = divmod(-key, AGGREGATE_ID_STRIDE)
    return {"datastream_id": stream, "phenomenon_time": EPOCH + timedelta(hours=hours)}


def _observation_arms(public_only: bool, dialect: str) -> tuple[Select[Any], ...]:
    return (_raw_observations(public_only), _hourly_observations(public_only, dialect))


def _observation_json(row: RowMapping, _root: str) -> dict[str, Any]:
    start = row["phenomenon_time"]
    out: dict[str, Any] = {}
    if row["count"] is not None:  # an hourly aggregate
        span = f"{iso_time(start)}/{iso_time(start + timedelta(hours=1))}"
        out = {"phenomenonTime": span, "resultTime": iso_time(start + timedelta(hours=1))}
        out["result"] = row["result"]
        out["parameters"] = {
            "aggregate": "hourly mean of readings beyond the raw window",
            "count": row["count"], "min": row["minimum"], "max": row["maximum"],
        }  # fmt: skip
        return out
    time = iso_time(start)
    out = {"phenomenonTime": time, "resultTime": time, "result": row["result"]}
    if row["lon"] is not None:
        position = [row["lon"], row["lat"]] + ([row["h"]] if row["h"] is not None else [])
        out["parameters"] = {"position": position}
    return out


OBSERVATION = EntityType(
    name="Observation",
    plural="Observations",
    arms=_observation_arms,
    columns={
        ("id",): "id",
        ("phenomenonTime",): "phenomenon_time",
        ("resultTime",): "phenomenon_time",
        ("result",): "result",
    },
    geometry=None,
    navigations={
        "Datastream": Navigation("Datastream", "Datastream", False, "datastream_id", "id"),
        "FeatureOfInterest": Navigation(
            "FeatureOfInterest", "FeatureOfInterest", False, "foi_id", "id"
        ),
    },
    to_json=_observation_json,
    properties=("id", "phenomenonTime", "resultTime", "result", "parameters"),
    keyset=frozenset({"id", "phenomenon_time", "result"}),
    locate=_locate_aggregate,
)


#: Every entity type by name, in the order the service root lists them.
TYPES: Final[Mapping[str, EntityType]] = {
    t.name: t
    for t in (
        THING, LOCATION, HISTORICAL_LOCATION, DATASTREAM, SENSOR, OBSERVED_PROPERTY,
        OBSERVATION, FEATURE_OF_INTEREST,
    )
}  # fmt: skip
#: Every entity type by the name of its entity set.
BY_SET: Final[Mapping[str, EntityType]] = {t.plural: t for t in TYPES.values()}
