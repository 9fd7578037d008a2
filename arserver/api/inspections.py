"""``/api/v1/inspections``: findings of field inspectors, their workflow and history, photos,
filtered listings and GeoJSON/CSV exports (see docs/inspections.md).

Readers read; ``inspector``, ``gis`` and ``admin`` write. The role is checked (401/403) before
the body is validated or read. Positions go out as ``[lon, lat, h]`` (WGS 84 degrees,
ellipsoidal metres; ``[lon, lat]`` when the height is unknown); times as ISO 8601 UTC.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StrictFloat
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from arserver.api.deps import get_inspections, get_settings, optional_token
from arserver.api.exports import GeoJSONResponse
from arserver.api.models import CheckedModel, aware_time, multipart_body
from arserver.config import Settings
from arserver.errors import InputError, NotFoundError, TooLargeError
from arserver.security.actors import person_of
from arserver.security.policy import Action, authorize
from arserver.security.tokens import TokenRecord
from arserver.services.checks import storable_text
from arserver.services.inspections import (
    HISTORY_PAGE,
    KEEP,
    MAX_ASSIGNEE_CHARS,
    MAX_DESCRIPTION_CHARS,
    MAX_HISTORY,
    MAX_LINKS,
    MAX_NOTE_CHARS,
    SEVERITIES,
    STATUSES,
    InspectionDetail,
    InspectionEdit,
    InspectionService,
    NewInspection,
)
from arserver.services.photos import MAX_CONCURRENT_DECODES, PhotoBusyError
from arserver.services.places import parse_bbox
from arserver.services.tabular import csv_text
from arserver.store.inspections import Cursor, EventRow, Filters, InspectionRow, PhotoRow

#: An export holds at most this many inspections (newest first); more are left out, and the
#: export says so (``X-Truncated: true``, and ``"truncated": true`` in GeoJSON).
EXPORT_LIMIT = 10_000
#: Photos never change under their id: clients may keep them this long (seconds).
PHOTO_MAX_AGE_S = 86_400
#: The largest history entry id a request may name (a signed 64-bit integer).
_MAX_EVENT_ID = 2**63 - 1

Severity = Literal["low", "normal", "high", "urgent"]
Status = Literal["open", "in_progress", "resolved", "rejected"]


def _reader(token: Annotated[TokenRecord | None, Depends(optional_token)]) -> TokenRecord:
    return authorize(token, Action.READ)


def _writer(token: Annotated[TokenRecord | None, Depends(optional_token)]) -> TokenRecord:
    return authorize(token, Action.WRITE_INSPECTIONS)


Reader = Annotated[TokenRecord, Depends(_reader)]
Writer = Annotated[TokenRecord, Depends(_writer)]
Service = Annotated[InspectionService, Depends(get_inspections)]


# -- what crosses the API ---------------------------------------------------------------------


class InspectionIn(CheckedModel):
    """A finding where the inspector stands (``location``; RD New + NAP with ``"crs":
    "EPSG:7415"``), or on a feature of a published asset (``asset`` + ``feature``, the
    position then the feature's; with a ``location`` too, the location is where on it)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "location": [4.8952, 52.3702, 43.1],
                    "category": "damage",
                    "description": "Kerb stone broken, sharp edge towards the cycle path",
                    "severity": "high",
                },
                {
                    "location": [121000.0, 487000.0, 1.2],
                    "crs": "EPSG:7415",
                    "category": "hazard",
                    "description": "Cable exposed in the excavation",
                    "sensors": ["water-3"],
                },
                {
                    "asset": "3f2a9c...",
                    "feature": "lamp-0412",
                    "category": "damage",
                    "description": "Lamp post leaning",
                },
            ]
        },
    )

    location: list[StrictFloat] | None = Field(
        default=None,
        min_length=2,
        max_length=3,
        description="[lon, lat, h] (WGS 84 degrees, ellipsoidal metres), or x, y[, z] in crs",
    )
    crs: str | None = Field(default=None, max_length=100, examples=["EPSG:7415"])
    category: str = Field(description="One of GET /api/v1/inspections/categories")
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION_CHARS)
    severity: Severity = "normal"
    asset: str | None = Field(default=None, max_length=64)
    feature: str | None = Field(default=None, min_length=1, max_length=200)
    sensors: list[str] = Field(default_factory=list, max_length=MAX_LINKS)
    alerts: list[str] = Field(default_factory=list, max_length=MAX_LINKS)
    assignee: str | None = Field(
        default=None, min_length=1, max_length=MAX_ASSIGNEE_CHARS, description="A person or team"
    )


class InspectionChange(CheckedModel):
    """A change: status (``open -> in_progress -> resolved | rejected``; resolving,
    rejecting and reopening need a ``note``), assignment (``null`` unassigns), edits, or a
    note alone. Fields left out stay as they are."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"status": "in_progress", "assignee": "team-wegen"},
                {"status": "resolved", "note": "Kerb stone replaced"},
                {"status": "open", "note": "Still broken on 12 March"},
                {"assignee": None},
                {"severity": "urgent", "note": "Children play here"},
            ]
        },
    )

    status: Status | None = None
    assignee: str | None = Field(default=None, min_length=1, max_length=MAX_ASSIGNEE_CHARS)
    note: str | None = Field(default=None, max_length=MAX_NOTE_CHARS)
    severity: Severity | None = None
    category: str | None = None
    description: str | None = Field(default=None, min_length=1, max_length=MAX_DESCRIPTION_CHARS)


class EventOut(BaseModel):
    """A history entry: its ``id`` (entries of one inspection have growing ids), who
    (``actor``), when (``at``), what (``change``: created | status | assigned | edited | note |
    photo), the status before and after, the assignee after, and the note."""

    id: int
    at: datetime
    actor: str | None
    change: str
    from_status: str | None
    to_status: str | None
    assignee: str | None
    note: str | None


class PhotoOut(BaseModel):
    """A photo, re-encoded without metadata: ``url`` the image, ``thumbnail`` a small one."""

    id: str
    url: str
    thumbnail: str
    content_type: str
    width: int
    height: int
    created_by: str | None
    created_at: datetime


class InspectionOut(BaseModel):
    id: str
    url: str
    status: Status
    category: str
    severity: Severity
    description: str
    location: list[float] = Field(description="[lon, lat, h] WGS 84, ellipsoidal h")
    asset: str | None
    feature: str | None
    sensors: list[str]
    alerts: list[str]
    assignee: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class InspectionDetailOut(InspectionOut):
    history: list[EventOut] = Field(
        description=f"Oldest first: the newest {HISTORY_PAGE} entries, or with "
        f"`?history_before=ID` the newest {HISTORY_PAGE} of those older than entry ID"
    )
    history_total: int = Field(
        description=f"How many history entries the inspection has (at most {MAX_HISTORY:,})"
    )
    history_next: int | None = Field(
        description="Pass as `history_before=` for the entries before these; null: no more"
    )
    photos: list[PhotoOut]


class InspectionPage(BaseModel):
    inspections: list[InspectionOut] = Field(description="Newest first")
    next: str | None = Field(description="Pass as cursor= for the next page; null: no more")


class Vocabulary(BaseModel):
    categories: list[str]
    severities: list[str]
    statuses: list[str]


def _url(inspection_id: str) -> str:
    return f"/api/v1/inspections/{inspection_id}"


def _location(row: InspectionRow) -> list[float]:
    return [row["lon"], row["lat"]] + ([row["h"]] if row["h"] is not None else [])


def _out(row: InspectionRow) -> InspectionOut:
    return InspectionOut(
        id=row["id"], url=_url(row["id"]), status=row["status"],  # type: ignore[arg-type]
        category=row["category"], severity=row["severity"],  # type: ignore[arg-type]
        description=row["description"], location=_location(row), asset=row["asset_id"],
        feature=row["feature_id"], sensors=row["sensor_ids"], alerts=row["alert_ids"],
        assignee=row["assignee"], created_by=row["created_by"], created_at=row["created_at"],
        updated_at=row["updated_at"], closed_at=row["closed_at"],
    )  # fmt: skip


def _photo_out(photo: PhotoRow) -> PhotoOut:
    url = f"{_url(photo['inspection_id'])}/photos/{photo['id']}"
    return PhotoOut(
        id=photo["id"], url=url, thumbnail=f"{url}?size=thumbnail",
        content_type=photo["content_type"], width=photo["width"], height=photo["height"],
        created_by=photo["created_by"], created_at=photo["created_at"],
    )  # fmt: skip


def _event_out(event: EventRow) -> EventOut:
    return EventOut(**{k: event[k] for k in EventOut.model_fields})  # type: ignore[literal-required]


def _detail_out(detail: InspectionDetail) -> InspectionDetailOut:
    return InspectionDetailOut(
        **_out(detail.inspection).model_dump(),
        history=[_event_out(e) for e in detail.history],
        history_total=detail.history_total,
        history_next=detail.history_next,
        photos=[_photo_out(p) for p in detail.photos],
    )


def _inspection_id(inspection_id: str) -> str:
    """The id from the path, or a 404 when no inspection can have it."""
    if len(inspection_id) > 32 or not storable_text(inspection_id):
        raise NotFoundError("no such inspection")
    return inspection_id


# -- filters ----------------------------------------------------------------------------------


def _choices(values: list[str] | None, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    """Repeated and comma-separated query values, each one of ``allowed``."""
    chosen = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
    for value in chosen:
        if value not in allowed:
            raise InputError(f"{what} {value[:60]!r} is not one of: {', '.join(allowed)}")
    return tuple(dict.fromkeys(chosen))


def _filters(
    settings: Annotated[Settings, Depends(get_settings)],
    bbox: Annotated[str | None, Query(description="west,south,east,north (WGS 84 degrees)")] = None,
    statuses: Annotated[
        list[str] | None,
        Query(alias="status", description="Repeat it or separate with commas: open,in_progress"),
    ] = None,
    categories: Annotated[
        list[str] | None, Query(alias="category", description="Repeat it or separate with commas")
    ] = None,
    asset: Annotated[str | None, Query(max_length=64, description="Only on this asset")] = None,
    created_from: Annotated[
        str | None, Query(alias="from", description="Created at or after (ISO 8601 with zone)")
    ] = None,
    created_to: Annotated[
        str | None, Query(alias="to", description="Created before (ISO 8601 with zone)")
    ] = None,
) -> Filters:
    if asset is not None and not storable_text(asset):
        raise InputError("asset must be an asset id")
    start, end = aware_time(created_from, "from"), aware_time(created_to, "to")
    return Filters(
        bbox=parse_bbox(bbox) if bbox is not None else None,
        statuses=_choices(statuses, STATUSES, "status"),
        categories=_choices(categories, tuple(settings.inspection_categories), "category"),
        asset_id=asset,
        created_from=start,
        created_to=end,
    )


def _cursor_text(row: InspectionRow) -> str:
    raw = json.dumps([row["created_at"].isoformat(), row["id"]]).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _cursor(text: str | None) -> Cursor | None:
    if text is None:
        return None
    try:
        created, last_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None or not isinstance(last_id, str) or not storable_text(last_id):
            raise ValueError(text)
        moment = moment.astimezone(UTC)  # a time near year 1 or 9999 overflows here
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InputError("cursor is not one that this server gave out") from None
    return (moment, last_id)


# -- exports ----------------------------------------------------------------------------------

CSV_COLUMNS = (
    "id", "status", "category", "severity", "description", "lon", "lat", "h", "asset",
    "feature", "sensors", "alerts", "assignee", "created_by", "created_at", "updated_at",
    "closed_at",
)  # fmt: skip


def _csv_cells(row: InspectionRow) -> list[object]:
    return [
        row["id"], row["status"], row["category"], row["severity"], row["description"],
        row["lon"], row["lat"], row["h"], row["asset_id"], row["feature_id"],
        " ".join(row["sensor_ids"]), " ".join(row["alert_ids"]), row["assignee"],
        row["created_by"], row["created_at"], row["updated_at"], row["closed_at"],
    ]  # fmt: skip


def to_csv(rows: list[InspectionRow]) -> str:
    """One line per inspection (:data:`CSV_COLUMNS`), linked ids separated by spaces, times
    ISO 8601 UTC; cells through :func:`~arserver.services.tabular.safe_cell` (no formulas)."""
    return csv_text((_csv_cells(row) for row in rows), CSV_COLUMNS)


def to_geojson(rows: list[InspectionRow], *, truncated: bool) -> dict[str, Any]:
    """A FeatureCollection of points (RFC 7946), with ``truncated`` and ``limit`` beside the
    features."""
    features = []
    for row in rows:
        out = _out(row).model_dump(mode="json", exclude={"location"})
        features.append(
            {
                "type": "Feature",
                "id": row["id"],
                "geometry": {"type": "Point", "coordinates": _location(row)},
                "properties": out,
            }
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "truncated": truncated,
        "limit": EXPORT_LIMIT,
    }


def _etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def _matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def _read_bounded(upload: UploadFile, limit: int) -> bytes:
    """At most ``limit`` bytes of the upload; :class:`TooLargeError` if it holds more."""
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(f"the photo is larger than the limit of {limit / (1 << 20):g} MiB")
    if not data:
        raise InputError("the photo is empty")
    return data


# -- the router -------------------------------------------------------------------------------


#: Photo uploads in worker threads at once (decoding, or waiting for one of the decoding
#: turns): beyond, an upload is refused at once, so that uploads never hold the thread pool
#: that every other route runs in.
_PHOTO_THREADS = threading.BoundedSemaphore(2 * MAX_CONCURRENT_DECODES)
BUSY = "the server is busy decoding other photos; send this one again in a moment"


def inspections_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/inspections", tags=["inspections"])

    @router.get(
        "/categories",
        response_model=Vocabulary,
        summary="The categories, severities and statuses inspections can have",
    )
    def vocabulary(
        _caller: Reader, settings: Annotated[Settings, Depends(get_settings)]
    ) -> Vocabulary:
        return Vocabulary(
            categories=list(settings.inspection_categories),
            severities=list(SEVERITIES),
            statuses=list(STATUSES),
        )

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=InspectionDetailOut,
        summary="Record a finding at a place or on an asset feature",
        description="Status `open`. The place must lie within the municipality's extent "
        "(`ARSERVER_EXTENT`); linked sensors and alerts must exist. Announced on the live "
        "`inspections` layer.",
    )
    def create(
        body: InspectionIn, caller: Writer, service: Service, response: Response
    ) -> InspectionDetailOut:
        row = service.create(
            NewInspection(
                category=body.category, description=body.description, severity=body.severity,
                location=body.location, crs=body.crs, asset_id=body.asset,
                feature_id=body.feature, sensor_ids=body.sensors, alert_ids=body.alerts,
                assignee=body.assignee,
            ),
            by=person_of(caller),
            caller=caller,
        )  # fmt: skip
        response.headers["Location"] = _url(row["id"])
        detail = service.detail(row["id"])
        assert detail is not None
        return _detail_out(detail)

    @router.get("", response_model=InspectionPage, summary="Inspections, newest first")
    def index(
        _caller: Reader,
        service: Service,
        filters: Annotated[Filters, Depends(_filters)],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[
            str | None, Query(max_length=200, description="`next` of the page before")
        ] = None,
    ) -> InspectionPage:
        found = service.search(filters, limit + 1, _cursor(cursor))
        page = found[:limit]
        return InspectionPage(
            inspections=[_out(r) for r in page],
            next=_cursor_text(page[-1]) if len(found) > limit else None,
        )

    @router.get(
        "/export",
        summary="Inspections as GeoJSON or CSV (same filters; at most 10,000, newest first)",
        description="When more match than an export holds, the newest 10,000 are exported "
        'and the answer says so: header `X-Truncated: true`, and `"truncated": true` in '
        "GeoJSON. CSV cells that spreadsheets would run as formulas start with `'`.",
        responses={
            200: {
                "content": {"application/geo+json": {}, "text/csv": {}},
                "description": "A GeoJSON FeatureCollection or CSV with a header line",
            }
        },
    )
    def export(
        _caller: Reader,
        service: Service,
        filters: Annotated[Filters, Depends(_filters)],
        export_format: Annotated[Literal["geojson", "csv"], Query(alias="format")] = "geojson",
    ) -> Response:
        found = service.search(filters, EXPORT_LIMIT + 1)
        truncated = len(found) > EXPORT_LIMIT
        rows = found[:EXPORT_LIMIT]
        headers = {"X-Truncated": "true" if truncated else "false"}
        if export_format == "csv":
            headers["Content-Disposition"] = 'attachment; filename="inspections.csv"'
            return Response(to_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)
        headers["Content-Disposition"] = 'attachment; filename="inspections.geojson"'
        return GeoJSONResponse(to_geojson(rows, truncated=truncated), headers=headers)

    @router.get(
        "/{inspection_id}",
        response_model=InspectionDetailOut,
        summary="An inspection with its history and photos",
        description=f"The history holds the newest {HISTORY_PAGE} entries (oldest first) "
        "and `history_total`; `history_next`, when not null, is the `history_before` that "
        "gives the entries before them.",
    )
    def read(
        inspection_id: str,
        _caller: Reader,
        service: Service,
        history_before: Annotated[
            int | None,
            Query(ge=1, le=_MAX_EVENT_ID, description="Only history entries older than this id"),
        ] = None,
    ) -> InspectionDetailOut:
        detail = service.detail(_inspection_id(inspection_id), history_before=history_before)
        if detail is None:
            raise NotFoundError(f"no inspection {inspection_id!r}")
        return _detail_out(detail)

    @router.patch(
        "/{inspection_id}",
        response_model=InspectionDetailOut,
        summary="Change an inspection's status, assignee or fields, or add a note",
        description="Transitions: open -> in_progress | resolved | rejected; in_progress -> "
        "open | resolved | rejected; resolved | rejected -> open (reopen). Resolving, "
        "rejecting and reopening need a `note` (422 without); other transitions, and changes "
        "of a closed inspection that do not reopen it, are 409. Each change is a history "
        "entry; a change that changes nothing writes nothing. An inspection keeps at most "
        f"{MAX_HISTORY:,} history entries: a change past them is 409.",
        responses={
            409: {"description": "The workflow, or the history's limit, does not allow this"}
        },
    )
    def change(
        inspection_id: str, body: InspectionChange, caller: Writer, service: Service
    ) -> InspectionDetailOut:
        edit = InspectionEdit(
            status=body.status,
            assignee=body.assignee if "assignee" in body.model_fields_set else KEEP,
            note=body.note,
            severity=body.severity,
            category=body.category,
            description=body.description,
        )
        row = service.change(_inspection_id(inspection_id), edit, by=person_of(caller))
        detail = service.detail(row["id"]) if row is not None else None
        if detail is None:
            raise NotFoundError(f"no inspection {inspection_id!r}")
        return _detail_out(detail)

    @router.post(
        "/{inspection_id}/photos",
        status_code=status.HTTP_201_CREATED,
        response_model=PhotoOut,
        summary="Add a photo (JPEG, PNG, WebP or HEIC); it is re-encoded without any metadata",
        description="Multipart with one part `file`. Every metadata block (EXIF with GPS and "
        "camera serial, XMP, IPTC, comments) is removed by re-encoding; a thumbnail is made. "
        "Larger than `ARSERVER_MAX_PHOTO_MIB`: 413; more pixels than "
        "`ARSERVER_MAX_PHOTO_MEGAPIXELS`: 413; not an image: 422. A process decodes two "
        "photos at a time: an upload that finds no turn within 30 s, or finds others already "
        "waiting for one, is 503 with Retry-After (send it again). Past 30 photos or 1,000 "
        "history entries: 409.",
        openapi_extra=multipart_body(),
    )
    async def add_photo(
        inspection_id: str,
        request: Request,
        caller: Writer,
        service: Service,
        settings: Annotated[Settings, Depends(get_settings)],
        response: Response,
    ) -> PhotoOut:
        checked_id = _inspection_id(inspection_id)
        limit = int(settings.max_photo_mib * (1 << 20))
        async with request.form(max_files=1, max_fields=5) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InputError("a 'file' part with the photo is required")
            data = await run_in_threadpool(_read_bounded, upload, limit)
        if not _PHOTO_THREADS.acquire(blocking=False):  # never wait in the shared pool
            raise PhotoBusyError(BUSY)
        try:
            photo = await run_in_threadpool(
                lambda: service.add_photo(checked_id, data, by=person_of(caller))
            )
        finally:
            _PHOTO_THREADS.release()
        if photo is None:
            raise NotFoundError(f"no inspection {inspection_id!r}")
        out = _photo_out(photo)
        response.headers["Location"] = out.url
        return out

    @router.get(
        "/{inspection_id}/photos/{photo_id}",
        summary="A photo (re-encoded) or its thumbnail",
        response_class=Response,
        responses={
            200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The image"},
            304: {"description": "Not modified (If-None-Match)"},
        },
    )
    def photo(
        inspection_id: str,
        photo_id: str,
        request: Request,
        _caller: Reader,
        service: Service,
        size: Annotated[Literal["full", "thumbnail"], Query()] = "full",
    ) -> Response:
        if len(photo_id) > 32 or not storable_text(photo_id):
            raise NotFoundError("no such photo")
        found = service.photo(
            _inspection_id(inspection_id), photo_id, thumbnail=size == "thumbnail"
        )
        if found is None:
            raise NotFoundError(f"no photo {photo_id!r} of inspection {inspection_id!r}")
        data, content_type = found
        etag = _etag(data)
        headers = {
            "ETag": etag,
            "Cache-Control": f"private, max-age={PHOTO_MAX_AGE_S}",
            "X-Content-Type-Options": "nosniff",
        }
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
        headers["Content-Disposition"] = "inline"
        return Response(data, media_type=content_type, headers=headers)

    return router
