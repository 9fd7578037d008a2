"""The sensor register as a publication (``/api/v1/register``): JSON, CSV or GeoJSON.

Readers see every registered sensor; callers without a token see the sensors whose data is
public (``public``), as everywhere in the API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from arserver.api.deps import get_sensors, optional_token
from arserver.api.exports import GeoJSONResponse
from arserver.security.policy import Action, authorize
from arserver.security.tokens import TokenRecord
from arserver.services.register import register_csv, register_geojson
from arserver.services.sensors import SensorService


def register_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["sensors"])

    @router.get(
        "/register",
        summary="The sensor register (owner, what, why, personal data, legal ground, dates)",
        responses={
            200: {
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/geo+json": {"schema": {"type": "object"}},
                },
                "description": 'JSON `{"sensors": [...]}`, or with `format` CSV (UTF-8 with a '
                "BOM; formulas neutralised) or a GeoJSON FeatureCollection",
            }
        },
    )
    def register(
        sensors: Annotated[SensorService, Depends(get_sensors)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
        export: Annotated[
            Literal["json", "csv", "geojson"], Query(alias="format", description="Output format")
        ] = "json",
    ) -> Any:
        if token is not None:
            authorize(token, Action.READ)
        entries = sensors.register_entries(public_only=token is None)
        if export == "csv":
            return Response(
                register_csv(entries),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": 'attachment; filename="sensor-register.csv"'},
            )
        if export == "geojson":
            return GeoJSONResponse(register_geojson(entries))
        return {"sensors": entries}

    return router
