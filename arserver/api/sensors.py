"""Sensors in public space and their observations (``/api/v1/sensors``, ``/api/v1/observations``,
``/api/v1/ingest/stats``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Response, status
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from sqlalchemy import Engine

from arserver.api.deps import get_engine, get_sensors, get_writer, optional_token, require_reader
from arserver.api.exports import GeoJSONResponse, to_csv, to_geojson, trajectory
from arserver.api.models import CheckedModel
from arserver.errors import InputError, NotFoundError
from arserver.live.area import bbox_around, distance_m
from arserver.security.policy import Action, authorize
from arserver.security.tokens import TokenRecord
from arserver.services.checks import MAX_ABS_HEIGHT_M, storable_text
from arserver.services.observations import ObservationWriter
from arserver.services.register import LegalGround
from arserver.services.sensors import SensorService
from arserver.store.sensors import (
    BUCKETS,
    SensorRow,
    buckets,
    get_sensor,
    history,
    ingest_counts,
    latest_in_area,
)

MAX_BATCH = 10_000
MAX_DEVICE_FIELDS = 50
#: A sensor measures at most this many quantities (one datastream each).
MAX_DATASTREAMS = 50
_KIND = r"^[a-z0-9_]{1,50}$"
_SENSOR_ID = r"^[A-Za-z0-9._:-]{1,100}$"


class DatastreamIn(CheckedModel):
    kind: str = Field(pattern=_KIND, examples=["no2"])
    unit: str = Field(min_length=1, max_length=30, description="UCUM code", examples=["ug/m3"])


class DeviceIn(CheckedModel):
    dev_eui: str = Field(pattern=r"^[0-9A-Fa-f]{16}$", examples=["0004A30B001C0530"])
    fields: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=100)],
        Annotated[str, StringConstraints(max_length=100)],
    ] = Field(
        max_length=MAX_DEVICE_FIELDS,
        description=f"decoded payload field -> datastream kind (at most {MAX_DEVICE_FIELDS}; "
        "names of at most 100 characters)",
    )


_Theme = Annotated[str, StringConstraints(min_length=1, max_length=50)]
_Url = Annotated[str, StringConstraints(max_length=500, pattern=r"^https?://[^\s]+$")]


class RegisterFieldsIn(CheckedModel):
    """The sensor register's fields (see :mod:`arserver.services.register`): all optional;
    ``personal_data`` true needs ``privacy_statement`` and ``legal_ground``."""

    owner: str | None = Field(
        default=None, max_length=200, description="Owner organisation", examples=["Gemeente"]
    )
    contact: str | None = Field(
        default=None,
        max_length=200,
        description="How to reach the owner about the sensor (published: a role address)",
        examples=["sensoren@gemeente.nl"],
    )
    kvk: str | None = Field(
        default=None, pattern=r"^[0-9]{8}$", description="Chamber-of-commerce (KvK) number"
    )
    sensor_type: str | None = Field(
        default=None,
        max_length=100,
        description="What kind of sensor, e.g. camera, sound, chemical, temperature, "
        "presence, magnetometer",
    )
    purpose: str | None = Field(default=None, max_length=500, description="Why it measures")
    themes: list[_Theme] | None = Field(
        default=None, max_length=20, examples=[["air quality", "mobility"]]
    )
    personal_data: bool | None = Field(
        default=None, description="Whether it processes personal data (default false)"
    )
    privacy_statement: _Url | None = Field(
        default=None, description="URL of the privacy statement (http or https)"
    )
    legal_ground: LegalGround | None = Field(
        default=None, description="Lawful basis under GDPR (AVG) art. 6(1)"
    )
    project: str | None = Field(default=None, max_length=200)
    placed_at: datetime | None = None
    removed_at: datetime | None = None
    public: bool | None = Field(
        default=None,
        description="Whether its data is readable without a token (SensorThings API, "
        "register); default false",
    )
    area: dict[str, Any] | None = Field(
        default=None,
        description="The GeoJSON Polygon or MultiPolygon a mobile sensor moves in (WGS 84, or "
        "in `crs`)",
    )

    @field_validator("placed_at", "removed_at")
    @classmethod
    def _zoned(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-05-01T12:00:00Z")
        return _utc(value, "the time")

    def register_values(self, *, only_given: bool) -> dict[str, Any]:
        """The register fields as the service takes them; ``only_given``: those the request
        named (a PATCH), else all with the defaults filled in."""
        names = set(RegisterFieldsIn.model_fields)
        given = self.model_dump(include=names, exclude_unset=only_given)
        if not only_given:
            given["personal_data"] = bool(given["personal_data"])
            given["public"] = bool(given["public"])
        return given


class SensorIn(RegisterFieldsIn):
    """A sensor with one datastream (``kind``, ``unit``) or several (``datastreams``), and its
    register fields."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_SENSOR_ID)
    name: str = Field(min_length=1, max_length=200)
    kind: str | None = Field(default=None, pattern=_KIND)
    unit: str | None = Field(default=None, min_length=1, max_length=30)
    datastreams: list[DatastreamIn] | None = Field(
        default=None, min_length=1, max_length=MAX_DATASTREAMS
    )
    location: list[float] | None = Field(
        default=None,
        description="[lon, lat] or [lon, lat, h]: WGS 84 degrees, ellipsoidal m; or x, y [, z] "
        "in `crs`",
    )
    crs: str | None = Field(
        default=None,
        description="The CRS of `location` and `area` when it is not WGS 84, e.g. EPSG:7415 "
        "for [RD x, RD y, NAP height]",
        examples=["EPSG:7415"],
    )
    device: DeviceIn | None = None
    asset_id: str | None = Field(default=None, max_length=32)
    feature_id: str | None = Field(default=None, max_length=100)

    @field_validator("location")
    @classmethod
    def _location(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (
            len(value) not in (2, 3) or not all(math.isfinite(v) for v in value)
        ):
            raise ValueError("location must be 2 or 3 finite numbers")
        return value

    @model_validator(mode="after")
    def _streams(self) -> SensorIn:
        where = self.location
        if (
            self.crs is None
            and where is not None
            and not (-180 <= where[0] <= 180 and -90 <= where[1] <= 90)
        ):
            raise ValueError("location must be [lon, lat] or [lon, lat, h] in degrees")
        if (
            self.crs is None
            and where is not None
            and len(where) == 3
            and not -MAX_ABS_HEIGHT_M <= where[2] <= MAX_ABS_HEIGHT_M
        ):
            raise ValueError(f"the height must be within {MAX_ABS_HEIGHT_M:g} m")
        single = self.kind is not None or self.unit is not None
        if single == (self.datastreams is not None):
            raise ValueError("give either 'kind' and 'unit', or 'datastreams'")
        if single and (self.kind is None or self.unit is None):
            raise ValueError("'kind' and 'unit' go together")
        kinds = [s.kind for s in self.streams()]
        if len(set(kinds)) != len(kinds):
            raise ValueError("datastream kinds must differ")
        if self.device is not None and not set(self.device.fields.values()) <= set(kinds):
            raise ValueError("device fields must map to the sensor's datastream kinds")
        return self

    def streams(self) -> list[DatastreamIn]:
        if self.datastreams is not None:
            return self.datastreams
        return [DatastreamIn(kind=self.kind or "", unit=self.unit or "")]


class SensorChange(RegisterFieldsIn):
    """Register fields to change (``null`` clears one); ``area`` in ``crs`` when given."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    crs: str | None = Field(default=None, description="The CRS of `area`", examples=["EPSG:28992"])


class ObservationBatch(BaseModel):
    """Not a :class:`CheckedModel`: an item with text that cannot be stored is a ``malformed``
    rejection of that item alone."""

    observations: list[Any] = Field(
        max_length=MAX_BATCH,
        description='items {"sensor", optional "kind", "time", "value", optional "position", '
        'optional "id"}; each is checked on its own',
    )


class RejectedItem(BaseModel):
    index: int
    cause: str
    reason: str


class IngestReply(BaseModel):
    accepted: int
    duplicate: int
    rejected: int
    rejections: list[RejectedItem]


def sensors_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["sensors"])

    @router.post("/sensors", status_code=status.HTTP_201_CREATED, summary="Register a sensor")
    def register(
        body: SensorIn,
        sensors: Annotated[SensorService, Depends(get_sensors)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        authorize(token, Action.REGISTER_SENSORS)
        values = {
            "id": body.id, "name": body.name,
            "dev_eui": body.device.dev_eui.upper() if body.device else None,
            "device_fields": body.device.fields if body.device else None,
            "asset_id": body.asset_id, "feature_id": body.feature_id,
            **body.register_values(only_given=False),
        }  # fmt: skip
        streams = [(s.kind, s.unit) for s in body.streams()]
        return _sensor_out(sensors.register(values, streams, body.location, body.crs))

    @router.patch("/sensors/{sensor_id}", summary="Change a sensor's register entry")
    def change(
        sensor_id: str,
        body: SensorChange,
        sensors: Annotated[SensorService, Depends(get_sensors)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        authorize(token, Action.REGISTER_SENSORS)
        changes = body.register_values(only_given=True)
        if "name" in body.model_fields_set:
            if body.name is None:
                raise InputError("a sensor keeps a name")
            changes["name"] = body.name
        _check_id(sensor_id)
        return _sensor_out(sensors.change(sensor_id, changes, body.crs))

    @router.get("/sensors/{sensor_id}", summary="A sensor and its datastreams")
    def read(
        sensor_id: str,
        engine: Annotated[Engine, Depends(get_engine)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        require_reader(token)
        return _sensor_out(_known_sensor(engine, sensor_id))

    @router.get(
        "/sensors/{sensor_id}/observations",
        summary="Raw observations, newest first",
        responses={
            200: {
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/geo+json": {"schema": {"type": "object"}},
                },
                "description": "JSON, or with `format` CSV or a GeoJSON FeatureCollection",
            }
        },
    )
    def observations(
        sensor_id: str,
        engine: Annotated[Engine, Depends(get_engine)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
        window: Annotated[Window, Depends()],
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        export: Annotated[
            Literal["json", "csv", "geojson"], Query(alias="format", description="Output format")
        ] = "json",
    ) -> Any:
        require_reader(token)
        sensor = _known_sensor(engine, sensor_id)
        rows = history(engine, sensor_id, window.kind, window.start, window.end, limit)
        if export == "csv":
            return Response(to_csv(rows), media_type="text/csv; charset=utf-8")
        if export == "geojson":
            return GeoJSONResponse(to_geojson(_sensor_out(sensor), rows))
        return {"observations": rows}

    @router.get(
        "/sensors/{sensor_id}/trajectory",
        summary="A mobile sensor's path as a GeoJSON Feature (LineString), oldest first",
        responses={
            200: {
                "content": {"application/geo+json": {"schema": {"type": "object"}}},
                "description": "A GeoJSON Feature with a LineString geometry",
            }
        },
    )
    def path(
        sensor_id: str,
        engine: Annotated[Engine, Depends(get_engine)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
        window: Annotated[Window, Depends()],
        limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    ) -> GeoJSONResponse:
        require_reader(token)
        _known_sensor(engine, sensor_id)
        rows = history(engine, sensor_id, window.kind, window.start, window.end, limit)
        return GeoJSONResponse(trajectory(sensor_id, rows))

    @router.get(
        "/sensors/{sensor_id}/observations/buckets",
        summary="Mean, min, max and count per time bucket, oldest first",
    )
    def bucketed(
        sensor_id: str,
        engine: Annotated[Engine, Depends(get_engine)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
        window: Annotated[Window, Depends()],
        bucket: Annotated[
            Literal["1m", "15m", "1h", "1d"], Query(description="Bucket size")
        ] = "1h",
    ) -> dict[str, Any]:
        require_reader(token)
        _known_sensor(engine, sensor_id)
        rows = buckets(engine, sensor_id, window.kind, BUCKETS[bucket], window.start, window.end)
        return {"bucket": bucket, "buckets": rows}

    @router.get("/observations/latest", summary="Newest value per datastream in an area")
    def latest(
        engine: Annotated[Engine, Depends(get_engine)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
        bbox: Annotated[str | None, Query(description="west,south,east,north (WGS 84)")] = None,
        center: Annotated[str | None, Query(description="lon,lat (with radius_m)")] = None,
        radius_m: Annotated[float | None, Query(gt=0, le=100_000)] = None,
        kinds: Annotated[str | None, Query(description="Comma-separated kinds")] = None,
    ) -> dict[str, Any]:
        require_reader(token)
        wanted = {k for k in kinds.split(",") if k} if kinds else None
        if wanted is not None and not all(re.fullmatch(_KIND, k) for k in wanted):
            raise InputError("kinds must be comma-separated datastream kinds such as no2,pm25")
        if bbox is not None:
            box = _numbers(bbox, 4, "bbox", "west,south,east,north")
            items = latest_in_area(engine, (box[0], box[1], box[2], box[3]), wanted)
        elif center is not None and radius_m is not None:
            lon, lat = _numbers(center, 2, "center", "lon,lat")
            items = [
                item
                for item in latest_in_area(engine, bbox_around(lon, lat, radius_m), wanted)
                if distance_m(lon, lat, item["location"][0], item["location"][1]) <= radius_m
            ]
        else:
            raise InputError("give a bbox, or a center and radius_m")
        return {"latest": items}

    @router.post(
        "/observations", response_model=IngestReply, summary="Store a batch of observations"
    )
    def store(
        writer: Annotated[ObservationWriter, Depends(get_writer)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
        body: Annotated[ObservationBatch, Body()],
    ) -> IngestReply:
        authorize(token, Action.WRITE_OBSERVATIONS)
        result = writer.write(body.observations)
        return IngestReply(
            accepted=result.accepted,
            duplicate=result.duplicate,
            rejected=len(result.rejected),
            rejections=[
                RejectedItem(index=r.index, cause=r.cause, reason=r.reason) for r in result.rejected
            ],
        )

    @router.get("/ingest/stats", summary="Observations accepted, duplicate and rejected, by cause")
    def stats(
        engine: Annotated[Engine, Depends(get_engine)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        require_reader(token)
        return {"counts": ingest_counts(engine)}

    return router


@dataclass
class Window:
    """Which datastream and which period (``from`` inclusive, ``to`` exclusive, with zones)."""

    kind: Annotated[str | None, Query(description="Which datastream", pattern=_KIND)] = None
    start: Annotated[datetime | None, Query(alias="from", description="Inclusive")] = None
    end: Annotated[datetime | None, Query(alias="to", description="Exclusive")] = None

    def __post_init__(self) -> None:
        for name, moment in (("from", self.start), ("to", self.end)):
            if moment is not None and moment.tzinfo is None:
                raise InputError(f"'{name}' needs a time zone, e.g. 2026-05-01T12:00:00Z")
        # SQLite compares times as UTC text: one zone for every comparison.
        try:
            self.start = _utc(self.start, "'from'") if self.start else None
            self.end = _utc(self.end, "'to'") if self.end else None
        except ValueError as exc:
            raise InputError(str(exc)) from None


def _utc(moment: datetime, name: str) -> datetime:
    """``moment`` (timezone-aware) in UTC; ValueError if its UTC is before year 1 or after
    9999 (``0001-01-01T00:00:00+01:00``), which no datetime holds."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{name} is out of range: in UTC it must fall within the years 1 to 9999"
        ) from None


def _check_id(sensor_id: str) -> None:
    """:class:`NotFoundError` for an id no sensor can have (too long, or a NUL character, which
    PostgreSQL cannot even compare), before it is looked up."""
    if not (len(sensor_id) <= 100 and storable_text(sensor_id)):
        raise NotFoundError(f"no sensor {sensor_id[:100]!r}")


def _known_sensor(engine: Engine, sensor_id: str) -> SensorRow:
    _check_id(sensor_id)
    sensor = get_sensor(engine, sensor_id)
    if sensor is None:
        raise NotFoundError(f"no sensor {sensor_id!r}")
    return sensor


def _numbers(text: str, count: int, name: str, shape: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise InputError(f"{name} must be '{shape}', got {text[:100]!r}")
    return values


def _sensor_out(row: SensorRow | None) -> dict[str, Any]:
    if row is None:
        raise NotFoundError("no such sensor")
    location = None
    if row["lon"] is not None:
        location = [row["lon"], row["lat"]] + ([row["h"]] if row["h"] is not None else [])
    fields: dict[str, Any] = dict(row)
    out = {
        k: fields[k]
        for k in (
            "id", "name", "asset_id", "feature_id", "datastreams", "owner", "contact", "kvk",
            "sensor_type", "purpose", "themes", "personal_data", "privacy_statement",
            "legal_ground", "project", "placed_at", "removed_at", "public", "area",
        )
    }  # fmt: skip
    out["location"] = location
    if row["dev_eui"]:
        out["device"] = {"dev_eui": row["dev_eui"], "fields": row["device_fields"]}
    return out
