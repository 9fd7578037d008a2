"""``/api/v1/assets``: upload location-bound data and follow its conversion to 3D Tiles.

An asset the caller may not see (a private one without a token, one outside a narrowed token's
scope) is answered exactly as one that does not exist: ``404``, same body, same headers. A token
whose role may not do an action at all is ``403`` before any lookup, so that reveals nothing.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from arserver.api.deps import get_assets, get_engine, get_settings, optional_token
from arserver.api.models import CheckedModel, multipart_body
from arserver.config import Settings
from arserver.errors import InputError, NotFoundError, TooLargeError
from arserver.security.policy import Action, admits, authorize
from arserver.security.tokens import TokenRecord
from arserver.services.assets import AssetService
from arserver.services.checks import storable_text
from arserver.store.assets import LIFECYCLES, AssetRow, extent_of, list_assets
from tiles.crs import parse_crs
from tiles.errors import UnknownCrsError


class AssetOut(BaseModel):
    """An asset and the state of its conversion."""

    id: str
    name: str
    layer: str
    crs: str | None
    origin: list[float] | None = Field(description="ETRS89 lon, lat (deg), ellipsoidal h (m)")
    heading: float
    lifecycle: str = Field(description="existing | planned | removed")
    public: bool
    status: str = Field(description="queued | processing | ready | failed")
    progress: float = Field(ge=0, le=1)
    stage: str | None
    error: str | None
    tileset: str | None = Field(description="URL path of the tileset once ready")
    bbox: list[float] | None = Field(description="WGS 84 west, south, east, north once ready")
    created_at: datetime
    updated_at: datetime


class AssetList(BaseModel):
    assets: list[AssetOut]


class AssetChange(CheckedModel):
    """Metadata that can change without converting again (placement and CRS cannot)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    layer: str | None = Field(default=None, min_length=1, max_length=100)
    lifecycle: Literal["existing", "planned", "removed"] | None = None
    public: bool | None = None


def _out(row: AssetRow) -> AssetOut:
    ready = row["status"] == "ready"
    extent = extent_of(row)
    fields: dict[str, Any] = dict(row)
    return AssetOut(
        **{
            k: fields[k]
            for k in AssetOut.model_fields
            if k in fields and k not in ("tileset", "bbox")
        },
        tileset=f"/tiles/{row['id']}/tileset.json" if ready else None,
        bbox=list(extent) if extent is not None else None,
    )


def _text(form: Any, name: str, default: str | None = None) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, UploadFile):
        return default
    return _storable(str(value), name).strip() or default


def _storable(value: str, name: str) -> str:
    """``value``, if a database can store it (no NUL character); else a 422."""
    if not storable_text(value):
        raise InputError(f"{name} must be text without NUL characters")
    return value


def _asset_id(asset_id: str) -> str:
    """The id from the path, or a 404 when no asset can have it (too long for the id column,
    or a NUL character, which PostgreSQL cannot even compare)."""
    if len(asset_id) > 32 or not storable_text(asset_id):
        raise NotFoundError(f"no asset {asset_id!r}")
    return asset_id


def _origin(value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        numbers = []
    if (
        len(numbers) != 3
        or not all(math.isfinite(v) for v in numbers)
        or not -90 <= numbers[1] <= 90
    ):
        raise InputError(
            f"origin must be 'lon,lat,h' (degrees, degrees, metres), got {value[:100]!r}"
        )
    return numbers


def _crs(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_crs(value)
    except UnknownCrsError as exc:
        raise InputError(str(exc)) from exc
    return value


def assets_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/assets", tags=["assets"])

    @router.post(
        "",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=AssetOut,
        summary="Upload an asset; its conversion to 3D Tiles is queued",
        openapi_extra=multipart_body(
            name={"type": "string"},
            crs={"type": "string", "example": "EPSG:7415"},
            origin={"type": "string", "example": "4.7610,52.3095,39.6"},
            heading={"type": "number"},
            layer={"type": "string", "default": "default"},
            lifecycle={"type": "string", "enum": list(LIFECYCLES)},
            public={"type": "boolean", "default": False},
        ),
        responses={413: {"description": "Larger than the upload limit"}},
    )
    async def upload(
        request: Request,
        assets: Annotated[AssetService, Depends(get_assets)],
        settings: Annotated[Settings, Depends(get_settings)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> AssetOut:
        authorize(token, Action.CHANGE_ASSETS)
        limit = settings.max_upload_mib * (1 << 20)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit + (1 << 20):
            raise TooLargeError(
                f"the upload is larger than the limit of {settings.max_upload_mib} MiB"
            )
        async with request.form(max_files=1, max_fields=20) as form:
            upload_file = form.get("file")
            if not isinstance(upload_file, UploadFile):
                raise InputError("a 'file' part is required")
            lifecycle = _text(form, "lifecycle", "existing")
            if lifecycle not in LIFECYCLES:
                raise InputError(f"lifecycle must be one of {', '.join(LIFECYCLES)}")
            try:
                heading = float(_text(form, "heading", "0") or 0)
            except ValueError:
                heading = math.nan
            if not math.isfinite(heading):
                raise InputError("heading must be a finite number of degrees")
            filename = _storable(upload_file.filename or "upload", "the file name")
            values = {
                "name": (_text(form, "name") or filename or "asset")[:200],
                "layer": (_text(form, "layer", "default") or "default")[:100],
                "crs": _crs(_text(form, "crs")),
                "origin": _origin(_text(form, "origin")),
                "heading": heading,
                "lifecycle": lifecycle,
                "public": (_text(form, "public", "false") or "").lower() in ("1", "true", "yes"),
            }
            row = await run_in_threadpool(
                assets.accept_upload, filename, upload_file.file, values, limit,
            )  # fmt: skip
        return _out(row)

    @router.get("/{asset_id}", response_model=AssetOut, summary="An asset and its conversion state")
    def read(
        asset_id: str,
        assets: Annotated[AssetService, Depends(get_assets)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> AssetOut:
        if token is not None:  # a role that may not read assets: 403, whatever the id
            authorize(token, Action.READ_ASSETS)
        row = assets.get(_asset_id(asset_id))
        if row is None or not (
            row["public"] or (token is not None and admits(token, row["id"], row["layer"]))
        ):  # absent, private to an anonymous caller, or outside the token's scope: all alike
            raise NotFoundError(f"no asset {asset_id!r}")
        return _out(row)

    @router.patch("/{asset_id}", response_model=AssetOut, summary="Change an asset's metadata")
    def change(
        asset_id: str,
        body: AssetChange,
        assets: Annotated[AssetService, Depends(get_assets)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> AssetOut:
        authorize(token, Action.CHANGE_ASSETS)
        row = assets.change(_asset_id(asset_id), body.model_dump(exclude_none=True))
        if row is None:
            raise NotFoundError(f"no asset {asset_id!r}")
        return _out(row)

    @router.delete(
        "/{asset_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Delete an asset and its tiles",
    )
    def remove(
        asset_id: str,
        assets: Annotated[AssetService, Depends(get_assets)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> Response:
        authorize(token, Action.CHANGE_ASSETS)
        if not assets.delete(_asset_id(asset_id)):
            raise NotFoundError(f"no asset {asset_id!r}")
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get("", response_model=AssetList, summary="Assets, newest first")
    def index(
        engine: Annotated[Engine, Depends(get_engine)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
        layer: Annotated[str | None, Query(description="Only this layer")] = None,
        bbox: Annotated[
            str | None, Query(description="west,south,east,north (WGS 84 degrees)")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> AssetList:
        box = None
        if bbox is not None:
            try:
                w, s, e, n = (float(v) for v in bbox.split(","))
            except ValueError:
                w = s = e = n = math.nan
            if not all(math.isfinite(v) for v in (w, s, e, n)):
                raise InputError(
                    f"bbox must be 'west,south,east,north' (finite degrees), got {bbox[:100]!r}"
                )
            box = (w, s, e, n)
        if layer is not None:
            _storable(layer, "layer")
        public_only = token is None
        if token is not None:
            authorize(token, Action.READ_ASSETS)
        rows = list_assets(engine, layer=layer, bbox=box, public_only=public_only, limit=limit)
        seen = [r for r in rows if r["public"] or admits(token, r["id"], r["layer"])]
        return AssetList(assets=[_out(r) for r in seen])

    return router
