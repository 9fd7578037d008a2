"""``/api/v1/parking``: parking zones and car parks, their occupancy now, its history, weekly
profile and forecasts (see docs/parking.md).

Readers read; ``gis`` and ``admin`` create, import and delete places
(:attr:`~arserver.security.policy.Action.MANAGE_PARKING`), checked before the body is
validated. Positions go out as WGS 84 ``[lon, lat]`` degrees; areas as an outer ring of such
points, closed; times as ISO 8601 UTC. Occupancy ``occupied + free + unknown == capacity``:
bays that are silent or stuck, and counters that are silent, count as unknown, never as free.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, StrictInt, field_validator

from arserver.api.deps import get_parking, optional_token
from arserver.api.models import CheckedModel, aware_time
from arserver.errors import InputError, NotFoundError
from arserver.security.policy import Action, authorize
from arserver.security.tokens import TokenRecord
from arserver.services.checks import storable_text
from arserver.services.parking import MAX_IMPORT, MAX_VERTICES, NewPlace, ParkingService
from arserver.services.places import parse_bbox

#: Places one listing returns at most (and by default).
MAX_LIMIT = 5_000
DEFAULT_LIMIT = 500
#: Buckets one history answer may span at most.
MAX_BUCKETS = 10_000
#: Bucket sizes of the history, in seconds.
WINDOWS = {"15m": 900, "1h": 3_600, "1d": 86_400}
#: The span of a history without ``start``: this many buckets before ``end`` (or now).
DEFAULT_BUCKETS = 672  # a week of 15-minute buckets
_PLACE_ID = r"^[A-Za-z0-9._:-]{1,100}$"
_SENSOR_ID = r"^[A-Za-z0-9._:-]{1,100}$"

Kind = Literal["zone", "car_park"]
Point = Annotated[list[FiniteFloat], Field(min_length=2, max_length=3)]


def _reader(token: Annotated[TokenRecord | None, Depends(optional_token)]) -> TokenRecord:
    return authorize(token, Action.READ)


def _manager(token: Annotated[TokenRecord | None, Depends(optional_token)]) -> TokenRecord:
    return authorize(token, Action.MANAGE_PARKING)


BBox = Annotated[
    str | None,
    Query(max_length=200, description="west,south,east,north (WGS 84 degrees)"),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
WithArea = Annotated[bool, Query(description="Include each place's area")]
Reader = Annotated[TokenRecord, Depends(_reader)]
Manager = Annotated[TokenRecord, Depends(_manager)]
Service = Annotated[ParkingService, Depends(get_parking)]


# -- what crosses the API ---------------------------------------------------------------------


class PlaceIn(CheckedModel):
    """A zone (an ``area`` with a ``capacity``, or the ``bays`` it has) or a car park (a
    ``location`` or an ``area``, a ``capacity`` and the ``counter`` sensor whose
    ``free_spaces`` datastream counts its free spaces). Coordinates are WGS 84 ``[lon, lat]``
    unless ``crs`` names another CRS (``EPSG:28992``: RD New ``[x, y]`` metres)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "zone",
                    "id": "centrum-noord",
                    "name": "Centrum noord",
                    "capacity": 40,
                    "area": [[4.8990, 52.3780], [4.9010, 52.3780], [4.9010, 52.3790],
                             [4.8990, 52.3790]],
                },
                {
                    "kind": "zone",
                    "name": "Stationsplein",
                    "capacity": 25,
                    "crs": "EPSG:28992",
                    "area": [[121500, 487500], [121600, 487500], [121600, 487580],
                             [121500, 487580]],
                },
                {
                    "kind": "car_park",
                    "id": "p-centrum",
                    "name": "P+R Centrum",
                    "capacity": 600,
                    "location": [4.8952, 52.3702],
                    "counter": "p-centrum",
                    "operator": "Gemeente",
                },
            ]
        },
    )  # fmt: skip

    kind: Kind
    name: str = Field(min_length=1, max_length=200)
    id: str | None = Field(default=None, pattern=_PLACE_ID, description="Default: a new random id")
    capacity: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="Spaces; a zone without one has one space per bay",
    )
    area: list[Point] | None = Field(
        default=None,
        min_length=3,
        max_length=MAX_VERTICES + 1,
        description=f"Outer ring, at most {MAX_VERTICES:,} points (closing it is optional); "
        "it must not cross itself",
    )
    location: Point | None = Field(
        default=None, description="Where the place is shown; default: inside its area"
    )
    crs: str | None = Field(default=None, min_length=1, max_length=100, examples=["EPSG:28992"])
    bays: list[Annotated[str, Field(pattern=_SENSOR_ID)]] | None = Field(
        default=None,
        max_length=10_000,
        description="A zone's bay sensors; default: the parking_bay sensors in its area",
    )
    counter: str | None = Field(
        default=None, pattern=_SENSOR_ID, description="A car park's free-spaces sensor"
    )
    operator: str | None = Field(default=None, max_length=200)


class _GeoJSON(BaseModel):
    model_config = ConfigDict(extra="allow")


class PolygonIn(_GeoJSON):
    type: Literal["Polygon"]
    coordinates: list[list[Point]] = Field(min_length=1, description="Outer ring first")


class MultiPolygonIn(_GeoJSON):
    type: Literal["MultiPolygon"]
    coordinates: list[list[list[Point]]] = Field(
        min_length=1, description="Polygons; the zone is the largest one's outer ring"
    )


class FeatureIn(_GeoJSON):
    type: Literal["Feature"]
    id: (
        Annotated[str, Field(pattern=_PLACE_ID)]
        | Annotated[StrictInt, Field(ge=0, le=10**18)]
        | None
    ) = Field(default=None, description="Becomes the zone's id (default: a random id)")
    properties: dict[str, Any] | None = Field(
        default=None, description="`name` or `naam`, and the capacity property"
    )
    geometry: Annotated[PolygonIn | MultiPolygonIn, Field(discriminator="type")]

    @field_validator("properties")
    @classmethod
    def _numbers(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for key, item in (value or {}).items():
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > 1e300:
                raise ValueError(f"property {key[:100]!r} is a number out of range")
        return value


class LegacyCrsIn(_GeoJSON):
    type: str | None = None
    properties: dict[str, Any] | None = Field(
        default=None, examples=[{"name": "urn:ogc:def:crs:EPSG::28992"}]
    )


class FeatureCollectionIn(CheckedModel, _GeoJSON):
    """A GeoJSON FeatureCollection (RFC 7946, plus the legacy ``crs`` member of 2008
    GeoJSON) of Polygons or MultiPolygons."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "FeatureCollection",
                    "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::28992"}},
                    "features": [
                        {
                            "type": "Feature",
                            "id": "vak-1",
                            "properties": {"naam": "Marktplein", "capaciteit": 30},
                            "geometry": {
                                "type": "Polygon",
                                "coordinates": [
                                    [[121500, 487500], [121600, 487500], [121600, 487580],
                                     [121500, 487500]]
                                ],
                            },
                        }
                    ],
                }
            ]
        },
    )  # fmt: skip

    type: Literal["FeatureCollection"]
    features: list[FeatureIn] = Field(min_length=1, max_length=MAX_IMPORT)
    crs: LegacyCrsIn | None = Field(
        default=None, description="The CRS, in 2008 GeoJSON's way (`crs` of the query wins)"
    )


class OccupancyOut(BaseModel):
    """Spaces now: ``occupied + free + unknown == capacity``; ``occupancy`` is occupied over
    the known part (null: nothing known); ``time`` the newest reading that counted."""

    capacity: int
    occupied: int
    free: int
    unknown: int
    occupancy: float | None
    time: datetime | None
    flags: list[str] = Field(
        description="silent_bays, stuck_bays, uncovered, more_bays_than_capacity, "
        "above_capacity, below_zero, silent_counter, closed, no_data"
    )
    silent_bays: list[str]
    stuck_bays: list[str]


class ForecastOut(BaseModel):
    horizon_min: int = Field(description="Minutes ahead: 15, 30 or 60")
    free: float = Field(description="Expected free spaces")
    occupancy: float = Field(description="Expected occupancy rate, 0..1")
    interval_80: list[float] = Field(description="[low, high] free spaces, an 80% interval")
    method: str = Field(description="model, profile_delta or last_value: what produced it")


class PlaceOut(BaseModel):
    id: str
    kind: Kind
    name: str
    capacity: int | None
    location: list[float] = Field(description="[lon, lat]")
    extent: list[float] = Field(description="[west, south, east, north]")
    source: str = Field(description="api, geojson or the feed it came from")
    operator: str | None
    open: bool | None
    counter: str | None
    bays: list[str] | None
    occupancy: OccupancyOut
    forecast: list[ForecastOut]
    area: list[list[float]] | None = Field(
        default=None, description="Outer ring [[lon, lat], ...], closed; left out of listings"
    )


class PlaceList(BaseModel):
    places: list[PlaceOut] = Field(description="Ordered by id")


class ImportOut(BaseModel):
    created: list[str] = Field(description="The ids of the zones created")


class BucketOut(BaseModel):
    start: datetime
    occupancy: float | None = Field(description="Mean occupancy rate of the known part")
    free: float
    unknown: float
    capacity: float
    count: int = Field(description="History rows in the bucket")


class HistoryOut(BaseModel):
    place: str
    window: str
    start: datetime
    end: datetime | None
    buckets: list[BucketOut] = Field(description="Oldest first; buckets without rows left out")


class PeakOut(BaseModel):
    day: str
    time: str = Field(description="HH:MM, local start of the 15-minute slot")
    occupancy: float


class ProfileOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    place: str
    samples: int
    start: datetime | None = Field(default=None, alias="from")
    end: datetime | None = Field(default=None, alias="to")
    timezone: str | None = None
    slot_minutes: int | None = None
    days: dict[str, list[float | None]] | None = Field(
        description="Per day type (monday..sunday, holiday) 96 slot rates; null without history"
    )
    days_of_data: dict[str, int] | None = None
    peaks: list[PeakOut]


class TimedForecastOut(ForecastOut):
    at: datetime = Field(description="The time it is for")


class PlaceForecastOut(BaseModel):
    place: str
    time: datetime = Field(description="When it was made (the forecasts' origin)")
    occupancy: OccupancyOut
    forecast: list[TimedForecastOut] = Field(description="Empty while nothing is known")


# -- checks of what the request names ---------------------------------------------------------


def _place_id(place_id: str) -> str:
    """The id from the path, or a 404 when no place can have it."""
    if len(place_id) > 100 or not storable_text(place_id):
        raise NotFoundError("no such parking place")
    return place_id


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    west, south, east, north = parse_bbox(text)
    if not (west < east and south < north):
        raise InputError("bbox must have west < east and south < north")
    return (west, south, east, north)


def _span(
    start: datetime | None, end: datetime | None, bucket_s: int
) -> tuple[datetime, datetime | None]:
    """``start`` (default: :data:`DEFAULT_BUCKETS` buckets before ``end`` or now) and ``end``,
    refused when they span more than :data:`MAX_BUCKETS` buckets."""
    until = end or datetime.now(UTC)
    if start is None:
        try:
            start = until - timedelta(seconds=DEFAULT_BUCKETS * bucket_s)
        except OverflowError:
            raise InputError("end is out of range") from None
    if start > until:
        raise InputError("start must not be after end")
    if (until - start).total_seconds() > MAX_BUCKETS * bucket_s:
        raise InputError(
            f"at most {MAX_BUCKETS:,} buckets per answer: narrow start..end or take a larger window"
        )
    return start, end


# -- the router -------------------------------------------------------------------------------


def parking_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/parking", tags=["parking"])
    list_description = (
        f"Ordered by id, at most `limit` (default {DEFAULT_LIMIT}, at most {MAX_LIMIT:,}). "
        "`bbox` (west,south,east,north in WGS 84 degrees, west < east, south < north) keeps "
        "the places whose extent meets it; its size is free, `limit` bounds the answer. Each "
        "place with its occupancy now and its forecasts; areas only with `area=true`."
    )

    def listing(
        service: ParkingService,
        kind: str | None,
        bbox: str | None,
        limit: int,
        area: bool,
    ) -> dict[str, Any]:
        states = service.places(kind=kind, bbox=_bbox(bbox), limit=limit)
        return {"places": [state.to_json(with_area=area) for state in states]}

    @router.get(
        "/places",
        response_model=PlaceList,
        response_model_exclude_unset=True,
        summary="Parking zones and car parks with their occupancy and forecasts",
        description=list_description,
    )
    def places(
        _caller: Reader,
        service: Service,
        kind: Annotated[Kind | None, Query()] = None,
        bbox: BBox = None,
        limit: Limit = DEFAULT_LIMIT,
        area: WithArea = False,
    ) -> dict[str, Any]:
        return listing(service, kind, bbox, limit, area)

    @router.get(
        "/zones",
        response_model=PlaceList,
        response_model_exclude_unset=True,
        summary="Parking zones with their occupancy and forecasts",
        description=list_description,
    )
    def zones(
        _caller: Reader,
        service: Service,
        bbox: BBox = None,
        limit: Limit = DEFAULT_LIMIT,
        area: WithArea = False,
    ) -> dict[str, Any]:
        return listing(service, "zone", bbox, limit, area)

    @router.get(
        "/car-parks",
        response_model=PlaceList,
        response_model_exclude_unset=True,
        summary="Car parks with their occupancy and forecasts",
        description=list_description,
    )
    def car_parks(
        _caller: Reader,
        service: Service,
        bbox: BBox = None,
        limit: Limit = DEFAULT_LIMIT,
        area: WithArea = False,
    ) -> dict[str, Any]:
        return listing(service, "car_park", bbox, limit, area)

    @router.post(
        "/places",
        status_code=status.HTTP_201_CREATED,
        response_model=PlaceOut,
        response_model_exclude_unset=True,
        summary="Create a parking zone or car park",
        description="The area is checked (at least 3 distinct points, not crossing itself, "
        "within longitude and latitude range once in WGS 84) and stored in WGS 84. The "
        "place's first occupancy is published on the live `parking` layer. An id that is "
        "taken: 409.",
    )
    def create(
        body: PlaceIn, _caller: Manager, service: Service, response: Response
    ) -> dict[str, Any]:
        state = service.create(
            NewPlace(
                kind=body.kind, name=body.name, id=body.id, capacity=body.capacity,
                area=body.area, location=body.location, crs=body.crs, bays=body.bays,
                counter=body.counter, operator=body.operator,
            )
        )  # fmt: skip
        response.headers["Location"] = f"/api/v1/parking/places/{state.place['id']}"
        return state.to_json()

    @router.post(
        "/zones/import",
        status_code=status.HTTP_201_CREATED,
        response_model=ImportOut,
        summary="Create zones from a GeoJSON FeatureCollection (all or nothing)",
        description="Each feature a Polygon or MultiPolygon with a capacity: the property "
        "`capacity_property`, else the first of `capacity`, `capaciteit`, `parkeerplaatsen`, "
        "`spaces`. Names from `name` or `naam`; feature ids become place ids (default: new "
        f"random ids). At most {MAX_IMPORT:,} features; the body is limited like every JSON "
        "write. One bad feature refuses the whole document (422, naming the feature); an id "
        "that is taken: 409.",
    )
    def import_zones(
        _caller: Manager,
        service: Service,
        document: FeatureCollectionIn,
        crs: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=100,
                description="The CRS of the coordinates (default: the document's `crs` "
                "member, else WGS 84)",
                examples=["EPSG:28992"],
            ),
        ] = None,
        capacity_property: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    ) -> ImportOut:
        created = service.import_geojson(
            document.model_dump(exclude_unset=True), crs=crs, capacity_property=capacity_property
        )
        return ImportOut(created=created)

    @router.get(
        "/places/{place_id}",
        response_model=PlaceOut,
        response_model_exclude_unset=True,
        summary="A parking place with its area, occupancy and forecasts",
    )
    def read(place_id: str, _caller: Reader, service: Service) -> dict[str, Any]:
        return service.get(_place_id(place_id)).to_json()

    @router.delete(
        "/places/{place_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Delete a parking place and its history",
        description="Its sensors stay; the live `parking` layer is told it is gone.",
    )
    def remove(place_id: str, _caller: Manager, service: Service) -> Response:
        service.delete(_place_id(place_id))
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get(
        "/places/{place_id}/history",
        response_model=HistoryOut,
        summary="Occupancy history in time buckets",
        description="Buckets of `window` (aligned to 1970-01-01 UTC), oldest first, from "
        f"`start` (default: {DEFAULT_BUCKETS} buckets before `end`) to `end` (default: now). "
        "Times are ISO 8601 with a time zone; a time without one, or `start` after `end`, is "
        f"422, as is a span of more than {MAX_BUCKETS:,} buckets.",
    )
    def history(
        place_id: str,
        _caller: Reader,
        service: Service,
        window: Annotated[Literal["15m", "1h", "1d"], Query()] = "1h",
        start: Annotated[str | None, Query(max_length=64, examples=["2026-05-01T00:00:00Z"])] = (
            None
        ),
        end: Annotated[str | None, Query(max_length=64)] = None,
    ) -> HistoryOut:
        checked = _place_id(place_id)
        bucket_s = WINDOWS[window]
        begin, until = _span(aware_time(start, "start"), aware_time(end, "end"), bucket_s)
        rows = service.history(checked, bucket_s=bucket_s, start=begin, end=until)
        return HistoryOut(
            place=checked,
            window=window,
            start=begin,
            end=until,
            buckets=[BucketOut(**row) for row in rows],
        )

    @router.get(
        "/places/{place_id}/profile",
        response_model=ProfileOut,
        response_model_by_alias=True,
        summary="Weekly occupancy profile (15-minute slots, Europe/Amsterdam) and peak times",
        description="From the last four weeks of history; Dutch public holidays are their own "
        "day type. Without history `days` is null and `samples` 0.",
    )
    def profile(place_id: str, _caller: Reader, service: Service) -> ProfileOut:
        return ProfileOut.model_validate(service.profile(_place_id(place_id)))

    @router.get(
        "/places/{place_id}/forecast",
        response_model=PlaceForecastOut,
        summary="Free spaces and occupancy at +15, +30 and +60 minutes with 80% intervals",
        description="Each forecast says which method made it: `model`, or where there is too "
        "little history `profile_delta` or `last_value`. Empty while the place's occupancy "
        "is unknown.",
    )
    def forecast(place_id: str, _caller: Reader, service: Service) -> PlaceForecastOut:
        origin = service.now()
        out = service.get(_place_id(place_id)).to_json(with_area=False)
        return PlaceForecastOut(
            place=out["id"],
            time=origin,
            occupancy=OccupancyOut.model_validate(out["occupancy"]),
            forecast=[
                TimedForecastOut(**item, at=origin + timedelta(minutes=int(item["horizon_min"])))
                for item in out["forecast"]
            ],
        )

    return router
