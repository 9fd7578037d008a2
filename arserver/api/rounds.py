"""``/api/v1/rounds``: participation rounds, their public links and their residents joining.

Planners and admins create and change rounds; everyone (anonymous callers too) reads the
announcement of a public round; a round-scoped resident token reads its own round only; a
staff round is, to anyone but staff, as missing as a round that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, status
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from arserver.api.deps import get_rounds, optional_token
from arserver.api.models import CheckedModel
from arserver.errors import NotFoundError
from arserver.security.actors import person_of
from arserver.security.policy import Action, authorize
from arserver.security.tokens import TokenRecord
from arserver.services.checks import storable_text
from arserver.services.rounds import MAX_ASSETS, IssuedToken, RoundDraft, RoundService, state_of
from arserver.store.rounds import RoundRow


def _utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time lies outside the years 1..9999 in UTC") from None


Moment = Annotated[
    AwareDatetime,
    AfterValidator(_utc),
    Field(description="ISO 8601 with a zone, e.g. 2026-05-01T09:00:00+02:00"),
]
AssetId = Annotated[str, Field(min_length=1, max_length=32)]
AREA_DESCRIPTION = (
    "A GeoJSON Polygon or MultiPolygon in WGS 84 (lon, lat), or x, y in `crs`: valid, at most "
    "10,000 vertices, within the municipality's extent; stored and answered in WGS 84"
)
CRS_DESCRIPTION = (
    "The CRS of the area's positions, x y order (e.g. EPSG:28992 RD New, EPSG:7415 RD New + "
    "NAP; heights are ignored); converted to WGS 84 (ETRS89) lon, lat. Default: WGS 84"
)


class RoundIn(CheckedModel):
    """Example: ``{"title": "Herinrichting Marktplein", "mode": "public", "privacy_notice":
    "We bewaren uw reactie en een pseudoniem, geen naam, e-mail of IP-adres...", "area":
    {"type": "Polygon", "coordinates": [[[4.89, 52.37], [4.90, 52.37], [4.90, 52.38],
    [4.89, 52.37]]]}, "assets": ["..."], "starts_at": "2026-05-01T09:00:00+02:00",
    "ends_at": "2026-06-01T00:00:00+02:00"}``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Herinrichting Marktplein",
                    "description": "Waar wilt u bankjes, bomen en fietsenrekken?",
                    "privacy_notice": "We bewaren uw reactie, de plek en een schuilnaam; geen "
                    "naam, e-mail- of IP-adres.",
                    "mode": "public",
                    "area": {
                        "type": "Polygon",
                        "coordinates": [
                            [[4.89, 52.37], [4.90, 52.37], [4.90, 52.38], [4.89, 52.37]]
                        ],
                    },
                    "assets": ["8c591a68828e4cc9"],
                    "starts_at": "2026-05-01T09:00:00+02:00",
                    "ends_at": "2026-06-01T00:00:00+02:00",
                }
            ]
        },
    )

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10000)
    privacy_notice: str = Field(
        default="",
        max_length=10000,
        description="What is stored about participants and why (required for public rounds)",
    )
    mode: Literal["staff", "public"] = Field(
        default="staff", description="staff: staff tokens only; public: residents too"
    )
    area: dict[str, Any] = Field(description=AREA_DESCRIPTION)
    crs: str | None = Field(default=None, min_length=1, max_length=50, description=CRS_DESCRIPTION)
    assets: list[AssetId] = Field(
        default_factory=list,
        max_length=MAX_ASSETS,
        description="The (planned) assets the round is about; a public round's must be public",
    )
    starts_at: Moment
    ends_at: Moment


class RoundPatch(CheckedModel):
    """The fields to change (the mode never changes). A change that would leave comments
    already written (but not erased) outside the round's window or area is refused (409)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"ends_at": "2026-06-15T00:00:00+02:00", "title": "Marktplein, verlengd"},
                {
                    "area": {
                        "type": "Polygon",
                        "coordinates": [
                            [[121500, 487300], [121900, 487300], [121900, 487700],
                             [121500, 487700], [121500, 487300]]
                        ],
                    },
                    "crs": "EPSG:28992",
                },
            ]
        },
    )  # fmt: skip

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10000)
    privacy_notice: str | None = Field(default=None, max_length=10000)
    area: dict[str, Any] | None = Field(default=None, description=AREA_DESCRIPTION)
    crs: str | None = Field(
        default=None, min_length=1, max_length=50, description=CRS_DESCRIPTION + " (with area)"
    )
    assets: list[AssetId] | None = Field(default=None, max_length=MAX_ASSETS)
    starts_at: Moment | None = None
    ends_at: Moment | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> RoundPatch:
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null; leave it out to keep it")
        return self


_TIME: JsonDict = {"format": "date-time"}


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoundOut(_Out):
    """A round's announcement; ``participants``, ``created_at`` and ``updated_at`` for staff
    only."""

    id: str
    title: str
    description: str
    privacy_notice: str
    mode: Literal["staff", "public"]
    area: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon, WGS 84 lon, lat")
    bbox: list[float] = Field(description="[west, south, east, north], degrees")
    assets: list[str]
    starts_at: str = Field(description="ISO 8601, UTC; comments from then", json_schema_extra=_TIME)
    ends_at: str = Field(description="ISO 8601, UTC; none from then", json_schema_extra=_TIME)
    state: Literal["upcoming", "open", "closed"]
    comment_count: int = Field(description="Visible comments")
    participants: int | None = Field(default=None, description="Residents who joined (staff)")
    created_at: str | None = Field(default=None, json_schema_extra=_TIME)
    updated_at: str | None = Field(default=None, json_schema_extra=_TIME)


class LinkFields(_Out):
    link_token: str = Field(description="The round's shared link token, shown once")
    link: str = Field(description="The viewer's address with the token in the fragment")
    link_expires_at: str | None = Field(
        description="ISO 8601, UTC (null: until revoked)", json_schema_extra=_TIME
    )


class NewRoundOut(RoundOut):
    """The new round; a public one with its link, given once."""

    link_token: str | None = Field(default=None, description="Public rounds: the link token")
    link: str | None = Field(default=None, description="Public rounds: the viewer's address")
    link_expires_at: str | None = Field(default=None, json_schema_extra=_TIME)


class RoundList(_Out):
    rounds: list[RoundOut]


class NewLinkOut(LinkFields):
    round: str


class JoinOut(_Out):
    round: str
    token: str = Field(description="The resident's own token (scope round:ID), shown once")
    pseudonym: str = Field(description="The name the resident's comments appear under")
    expires_at: str | None = Field(
        description="ISO 8601, UTC (null: until revoked)", json_schema_extra=_TIME
    )


def _round_out(
    row: RoundRow, comments: int, now: datetime, participants: int | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"], "title": row["title"], "description": row["description"],
        "privacy_notice": row["privacy_notice"], "mode": row["mode"], "area": row["area"],
        "bbox": [row["west"], row["south"], row["east"], row["north"]],
        "assets": row["asset_ids"], "starts_at": row["starts_at"].isoformat(),
        "ends_at": row["ends_at"].isoformat(), "state": state_of(row, now),
        "comment_count": comments,
    }  # fmt: skip
    if participants is not None:  # staff only
        out["participants"] = participants
        out["created_at"] = row["created_at"].isoformat()
        out["updated_at"] = row["updated_at"].isoformat()
    return out


def _link_out(round_id: str, link: IssuedToken) -> dict[str, Any]:
    expires = link.record.expires_at
    return {
        "link_token": link.secret,
        "link": f"/viewer?round={round_id}#access_token={link.secret}",
        "link_expires_at": expires.isoformat() if expires is not None else None,
    }


def _is_staff(token: TokenRecord | None) -> bool:
    return token is not None and token.role != "resident"


def _known(round_id: str) -> None:
    if len(round_id) > 32 or not storable_text(round_id):  # no such id can exist
        raise NotFoundError("no such round")


def rounds_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["participation"])

    @router.post(
        "/rounds",
        status_code=status.HTTP_201_CREATED,
        response_model=NewRoundOut,
        response_model_exclude_unset=True,
        summary="Create a participation round",
        description="A public round's answer carries its link token once (`link_token`, and "
        "`link`: the viewer's address with the token in the fragment, which stays out of "
        "server logs); share it with the residents.",
    )
    def create_round(
        body: RoundIn,
        service: Annotated[RoundService, Depends(get_rounds)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        caller = authorize(token, Action.MANAGE_ROUNDS)
        draft = RoundDraft(
            title=body.title, description=body.description, privacy_notice=body.privacy_notice,
            mode=body.mode, area=body.area, assets=body.assets, starts_at=body.starts_at,
            ends_at=body.ends_at, crs=body.crs,
        )  # fmt: skip
        row, link = service.create(draft, person_of(caller))
        out = _round_out(row, 0, service.clock(), participants=0)
        if link is not None:
            out.update(_link_out(row["id"], link))
        return out

    @router.get(
        "/rounds",
        response_model=RoundList,
        response_model_exclude_unset=True,
        summary="Participation rounds",
        description="The latest start first. Anonymous callers and residents see public "
        "rounds only; a round's own token sees that round.",
    )
    def rounds_index(
        service: Annotated[RoundService, Depends(get_rounds)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        if token is not None:
            authorize(token, Action.READ_ROUNDS)
        rows = service.visible_to(token, limit)
        counts = service.comment_counts([r["id"] for r in rows])
        now = service.clock()
        return {"rounds": [_round_out(r, counts[r["id"]], now) for r in rows]}

    @router.get(
        "/rounds/{round_id}",
        response_model=RoundOut,
        response_model_exclude_unset=True,
        summary="A round's announcement",
        description="Title, description, privacy notice, area, assets, window, mode, state "
        "(upcoming, open, closed) and the number of visible comments.",
    )
    def round_detail(
        round_id: str,
        service: Annotated[RoundService, Depends(get_rounds)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        if token is not None:
            authorize(token, Action.READ_ROUNDS)
        _known(round_id)
        row = service.get(round_id)
        if row is None or not service.readable(row, token):
            raise NotFoundError(f"no round {round_id!r}")
        count = service.comment_counts([round_id])[round_id]
        participants = service.participants(round_id) if _is_staff(token) else None
        return _round_out(row, count, service.clock(), participants)

    @router.patch(
        "/rounds/{round_id}",
        response_model=RoundOut,
        response_model_exclude_unset=True,
        summary="Change a round",
    )
    def change_round(
        round_id: str,
        body: RoundPatch,
        service: Annotated[RoundService, Depends(get_rounds)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        authorize(token, Action.MANAGE_ROUNDS)
        _known(round_id)
        changes = {name: getattr(body, name) for name in body.model_fields_set}
        row = service.update(round_id, changes)
        count = service.comment_counts([round_id])[round_id]
        return _round_out(row, count, service.clock(), service.participants(round_id))

    @router.post(
        "/rounds/{round_id}/link",
        status_code=status.HTTP_201_CREATED,
        response_model=NewLinkOut,
        summary="Issue a new link for a public round",
        description="Revokes the round's link tokens and issues a new one; residents who "
        "joined keep their own tokens.",
    )
    def new_link(
        round_id: str,
        service: Annotated[RoundService, Depends(get_rounds)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        authorize(token, Action.MANAGE_ROUNDS)
        _known(round_id)
        return {"round": round_id, **_link_out(round_id, service.reissue_link(round_id))}

    @router.post(
        "/rounds/{round_id}/participants",
        status_code=status.HTTP_201_CREATED,
        response_model=JoinOut,
        summary="Join a public round with its link",
        description="Presented with the round's link token; answers a personal resident "
        "token (`token`, shown once) for commenting in the round, and the pseudonym its "
        "comments appear under. Refused (409) once the round is closed.",
    )
    def join_round(
        round_id: str,
        service: Annotated[RoundService, Depends(get_rounds)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        caller = authorize(token, Action.JOIN_ROUNDS)
        _known(round_id)
        issued, name = service.join(round_id, caller)
        expires = issued.record.expires_at
        return {
            "round": round_id,
            "token": issued.secret,
            "pseudonym": name,
            "expires_at": expires.isoformat() if expires is not None else None,
        }

    return router
