"""``GET /api/v1/rounds/{round_id}/report``: a participation round's report for planners, as
JSON, CSV (a spreadsheet, one row per comment) or a printable HTML page.

The models below only document the JSON shape in the OpenAPI schema; the report itself is made
by :func:`arserver.services.round_report.build_report`, whose docstring is the contract.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from arserver.api.deps import get_engine, optional_token
from arserver.security.policy import Action, authorize
from arserver.security.tokens import TokenRecord
from arserver.services.round_report import (
    HTML_POLICY,
    build_report,
    report_csv,
    report_html,
    report_json,
)

_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9_-]")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReportAsset(_Strict):
    id: str
    name: str | None = Field(description="None for an asset deleted since")


class RoundAnnouncement(_Strict):
    id: str
    title: str
    description: str
    privacy_notice: str
    mode: str = Field(description="staff or public")
    area: Any = Field(description="GeoJSON Polygon or MultiPolygon, WGS 84")
    bbox: list[float] = Field(description="[west, south, east, north], degrees")
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    updated_at: datetime
    assets: list[ReportAsset] = Field(description="The planned assets, in the round's order")


class ReportTotals(_Strict):
    comments: int = Field(description="Every comment of the round, every status")
    residents: int = Field(description="Distinct pseudonyms among residents' comments")
    visible: int
    hidden: int
    erased: int
    answered: int = Field(description="Comments with a planners' response")
    unanswered: int = Field(description="Visible residents' comments without a response")


class ReportCounts(_Strict):
    comments: int
    answered: int
    unanswered: int


class ReportFeatureCounts(ReportCounts):
    feature: str


class ReportObjectCounts(ReportCounts):
    asset: str | None = Field(description="None: the comments about no object")
    asset_name: str | None
    planned: bool
    features: list[ReportFeatureCounts]


class ReportModerationStep(_Strict):
    action: str = Field(description="hidden, restored or answered")
    at: datetime
    text: str | None = Field(description="The reason (None once erased) or the answer")


class ReportComment(_Strict):
    id: str
    thread_id: str
    reply_to: str | None
    created_at: datetime
    lon: float
    lat: float
    h: float | None = Field(description="Ellipsoidal height, metres")
    asset: str | None
    asset_name: str | None
    feature: str | None
    author_name: str = Field(description="A resident's pseudonym in this round, or a staff name")
    author_kind: str = Field(description="staff or resident")
    status: str = Field(description="visible, hidden or erased")
    text: str | None = Field(description="None once erased on request")
    moderation_reason: str | None
    moderated_at: datetime | None
    response: str | None = Field(description="The planners' answer")
    responded_at: datetime | None
    moderation_history: list[ReportModerationStep] = Field(
        description="Every hide, restore and answer, oldest first (never who)"
    )


class RoundReport(_Strict):
    """The report; comments grouped per thread (threads in the order of their first comment,
    each in time order); times ISO 8601 UTC."""

    round: RoundAnnouncement
    generated_at: datetime
    totals: ReportTotals
    objects: list[ReportObjectCounts] = Field(
        description="Planned assets, other assets commented on, then 'no object' (asset null)"
    )
    comments: list[ReportComment]


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": RoundReport,
        "description": "The report: JSON; with `format=csv` a CSV file (UTF-8 with BOM, one "
        "row per comment, as an attachment); with `format=html` a printable HTML page",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
        },
    }
}


def _filename(round_id: str, extension: str) -> str:
    return f"round-{_UNSAFE_IN_FILENAME.sub('_', round_id)}-report.{extension}"


def round_report_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["rounds"])

    @router.get(
        "/rounds/{round_id}/report",
        summary="A participation round's report (planners)",
        description="The round's announcement, every comment (hidden ones with the reason, "
        "erased ones marked), the planners' responses, counts per object and totals: what "
        "the municipality attaches to its decision. Never names who wrote a comment: "
        "residents appear under their pseudonym.",
        response_model=None,
        responses=_RESPONSES,
    )
    def report(
        round_id: str,
        engine: Annotated[Engine, Depends(get_engine)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
        fmt: Annotated[
            Literal["json", "csv", "html"], Query(alias="format", description="Output format")
        ] = "json",
    ) -> Response:
        authorize(token, Action.MODERATE_COMMENTS)
        built = build_report(engine, round_id)
        if fmt == "csv":
            return Response(
                report_csv(built),
                media_type="text/csv; charset=utf-8",
                headers={
                    "Content-Disposition": f'attachment; filename="{_filename(round_id, "csv")}"'
                },
            )
        if fmt == "html":
            return Response(
                report_html(built),
                media_type="text/html; charset=utf-8",
                headers={
                    "Content-Security-Policy": HTML_POLICY,
                    "Content-Disposition": f'inline; filename="{_filename(round_id, "html")}"',
                },
            )
        return Response(report_json(built), media_type="application/json")

    return router
