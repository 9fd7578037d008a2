"""``/api/v1/comments``: comments (annotations) at a place or on an asset feature, in threads,
optionally in a participation round; their moderation and the planners' answers.

No answer carries who wrote a comment (its ``author``): everyone sees ``author_name`` (a
resident's per-round pseudonym; for staff, in a public round a role label such as
"Gemeente", elsewhere their token's name). Moderators (planners, admins) also see hidden
comments, why they were hidden and by whom, and a comment's moderation history.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from arserver.api.deps import get_comments, optional_token
from arserver.api.models import CheckedModel
from arserver.errors import InputError, NotFoundError
from arserver.security.actors import person_of
from arserver.security.policy import Action, authorize
from arserver.security.tokens import TokenRecord
from arserver.services.checks import storable_text
from arserver.services.comments import (
    MAX_PAGE,
    CommentDraft,
    CommentService,
    Listing,
    is_moderator,
)
from arserver.store.comments import CommentEventRow, CommentRow

Coordinate = Annotated[float, Field(strict=True, allow_inf_nan=False)]
MAX_TEXT = 5000


class CommentIn(CheckedModel):
    """Example: ``{"location": [4.8952, 52.3702, 43.1], "text": "Graag meer bomen hier",
    "round": "..."}``, or on a feature: ``{"asset": "...", "feature": "kabel-12", "text":
    "..."}``; a reply: ``{"reply_to": "...", "text": "..."}`` (its place and round are those
    of the comment it answers unless given)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "location": [4.8952, 52.3702, 43.1],
                    "text": "Graag meer bomen hier",
                    "round": "5f0c3b1e9a7d4c2b8e6f1a2b3c4d5e6f",
                },
                {
                    "asset": "8c591a68828e4cc9",
                    "feature": "utility-1",
                    "text": "Ligt deze kabel onder het nieuwe fietspad?",
                },
                {
                    "reply_to": "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a",
                    "text": "Eens, de hoek is onoverzichtelijk.",
                },
            ]
        },
    )

    text: str = Field(min_length=1, max_length=MAX_TEXT, description="Stored verbatim")
    location: list[Coordinate] | None = Field(
        default=None,
        min_length=2,
        max_length=3,
        description="[lon, lat] or [lon, lat, h] (WGS 84, ellipsoidal metres), or x, y, z in `crs`",
    )
    crs: str | None = Field(default=None, max_length=50, description="e.g. EPSG:7415")
    asset: str | None = Field(default=None, min_length=1, max_length=32)
    feature: str | None = Field(default=None, min_length=1, max_length=200)
    round: str | None = Field(default=None, min_length=1, max_length=32)
    reply_to: str | None = Field(default=None, min_length=1, max_length=32)


class HideIn(CheckedModel):
    """Why a comment is hidden (kept for moderators and in the comment's history)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "Persoonsgegevens van een buurman genoemd"}]},
    )

    reason: str = Field(min_length=1, max_length=1000, description="Kept for moderators")


class ResponseIn(CheckedModel):
    """The planners' answer, shown with the comment (posting again replaces it)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "Dank u. In het ontwerp komen zes lindes langs de oostgevel."}]
        },
    )

    text: str = Field(min_length=1, max_length=MAX_TEXT, description="The planners' answer")


_TIME: JsonDict = {"format": "date-time"}


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnswerOut(_Out):
    text: str
    at: str = Field(description="ISO 8601, UTC", json_schema_extra=_TIME)
    by: str | None = Field(default=None, description="Who answered (moderators only)")


class ModerationOut(_Out):
    reason: str | None = Field(description="Why it was (last) hidden")
    by: str | None = Field(description="Who moderated it last")
    at: str = Field(description="ISO 8601, UTC", json_schema_extra=_TIME)


class ModerationStepOut(_Out):
    action: str = Field(description="hidden, restored or answered")
    at: str = Field(description="ISO 8601, UTC", json_schema_extra=_TIME)
    by: str | None = Field(description="Who did it")
    text: str | None = Field(description="The reason (hidden) or the answer (answered)")


class CommentOut(_Out):
    """A comment as its reader may see it. ``moderation`` is present for moderators only,
    ``moderation_history`` for moderators reading one comment (``GET /comments/{id}``)."""

    id: str
    round: str | None
    thread: str = Field(description="The id of the thread's first comment")
    reply_to: str | None
    location: list[float] = Field(description="[lon, lat] or [lon, lat, h] (WGS 84, ellipsoidal m)")
    asset: str | None = Field(description="Blank for residents where the asset is not public")
    feature: str | None
    text: str = Field(description="Verbatim: show it as text, never as markup")
    author_name: str = Field(
        description="A resident's pseudonym in the round; staff: a role label in a public round "
        "('Gemeente'), elsewhere their token's name"
    )
    author_kind: str = Field(description="resident or staff")
    status: str = Field(description="visible or hidden (hidden: moderators only)")
    created_at: str = Field(description="ISO 8601, UTC", json_schema_extra=_TIME)
    response: AnswerOut | None
    moderation: ModerationOut | None = Field(
        default=None, description="Moderators only: the latest moderation (null: never)"
    )
    moderation_history: list[ModerationStepOut] | None = Field(
        default=None, description="Moderators only, one comment: every step, oldest first"
    )


class CommentPage(_Out):
    comments: list[CommentOut]
    next: str | None = Field(description="The cursor of the next page (null on the last)")


def _comment_out(row: CommentRow, moderator: bool) -> dict[str, Any]:
    location = [row["lon"], row["lat"]] + ([row["h"]] if row["h"] is not None else [])
    response: dict[str, Any] | None = None
    if row["response"] is not None and row["responded_at"] is not None:
        response = {"text": row["response"], "at": row["responded_at"].isoformat()}
        if moderator:
            response["by"] = row["responded_by"]
    out: dict[str, Any] = {
        "id": row["id"], "round": row["round_id"], "thread": row["thread_id"],
        "reply_to": row["reply_to"], "location": location, "asset": row["asset_id"],
        "feature": row["feature_id"], "text": row["text"], "author_name": row["author_name"],
        "author_kind": row["author_kind"], "status": row["status"],
        "created_at": row["created_at"].isoformat(), "response": response,
    }  # fmt: skip
    if moderator:
        moderated = row["moderated_at"]
        out["moderation"] = (
            None
            if moderated is None
            else {
                "reason": row["moderation_reason"],
                "by": row["moderated_by"],
                "at": moderated.isoformat(),
            }
        )
    return out


def _history_out(steps: list[CommentEventRow]) -> list[dict[str, Any]]:
    return [
        {"action": e["action"], "at": e["at"].isoformat(), "by": e["actor"], "text": e["text"]}
        for e in steps
    ]


def _known(comment_id: str) -> None:
    if len(comment_id) > 32 or not storable_text(comment_id):  # no such id can exist
        raise NotFoundError("no such comment")


def _text(value: str | None, name: str) -> str | None:
    if value is not None and not storable_text(value):
        raise InputError(f"{name} must be valid Unicode without NUL characters")
    return value


def comments_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["participation"])

    @router.post(
        "/comments",
        status_code=status.HTTP_201_CREATED,
        response_model=CommentOut,
        response_model_exclude_unset=True,
        summary="Comment at a place or on an asset feature",
        description="In a round only while it is open (409 before and after), within its "
        "area (422); residents only in their own public round, under their pseudonym. A "
        "round's shared link cannot comment: join the round first. The comment reaches the "
        "live `annotations` layer.",
    )
    def create_comment(
        body: CommentIn,
        service: Annotated[CommentService, Depends(get_comments)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        if token is not None and token.scope is not None and token.scope.kind == "round-link":
            caller = token  # the service refuses it with the way to join
        else:
            caller = authorize(token, Action.COMMENT)
        draft = CommentDraft(
            text=body.text, location=body.location, crs=body.crs, asset_id=body.asset,
            feature_id=body.feature, round_id=body.round, reply_to=body.reply_to,
        )  # fmt: skip
        row = service.create(caller, draft)
        return _comment_out(row, is_moderator(caller))

    @router.get(
        "/comments",
        response_model=CommentPage,
        response_model_exclude_unset=True,
        summary="Comments, newest first",
        description="Residents read the visible comments of their round; moderators also "
        "hidden ones. `next` is the cursor of the next page (null on the last).",
    )
    def comments_index(
        service: Annotated[CommentService, Depends(get_comments)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
        round_id: Annotated[str | None, Query(alias="round", max_length=32)] = None,
        asset: Annotated[str | None, Query(max_length=32)] = None,
        bbox: Annotated[
            str | None, Query(max_length=200, description="west,south,east,north (WGS 84)")
        ] = None,
        thread: Annotated[str | None, Query(max_length=32)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, Any]:
        caller = authorize(token, Action.READ_COMMENTS)
        listing = Listing(
            round_id=_text(round_id, "round"), asset_id=_text(asset, "asset"),
            thread_id=_text(thread, "thread"), bbox=bbox, limit=limit,
            cursor=_text(cursor, "cursor"),
        )  # fmt: skip
        rows, following = service.find(caller, listing)
        moderator = is_moderator(caller)
        return {"comments": [_comment_out(r, moderator) for r in rows], "next": following}

    @router.get(
        "/comments/{comment_id}",
        response_model=CommentOut,
        response_model_exclude_unset=True,
        summary="A comment",
        description="Moderators also get its `moderation_history`: every hide, restore and "
        "answer, oldest first, with who and when.",
    )
    def comment_detail(
        comment_id: str,
        service: Annotated[CommentService, Depends(get_comments)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        caller = authorize(token, Action.READ_COMMENTS)
        _known(comment_id)
        row, history = service.detail(caller, comment_id)
        out = _comment_out(row, is_moderator(caller))
        if history is not None:
            out["moderation_history"] = _history_out(history)
        return out

    @router.post(
        "/comments/{comment_id}/hide",
        response_model=CommentOut,
        response_model_exclude_unset=True,
        summary="Hide a comment (moderation)",
        description="The text and the reason are kept, for moderators and the audit log; the "
        "comment leaves the live overlay.",
    )
    def hide_comment(
        comment_id: str,
        body: HideIn,
        service: Annotated[CommentService, Depends(get_comments)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        caller = authorize(token, Action.MODERATE_COMMENTS)
        _known(comment_id)
        return _comment_out(service.hide(comment_id, body.reason, person_of(caller)), True)

    @router.post(
        "/comments/{comment_id}/restore",
        response_model=CommentOut,
        response_model_exclude_unset=True,
        summary="Show a hidden comment again",
    )
    def restore_comment(
        comment_id: str,
        service: Annotated[CommentService, Depends(get_comments)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        caller = authorize(token, Action.MODERATE_COMMENTS)
        _known(comment_id)
        return _comment_out(service.restore(comment_id, person_of(caller)), True)

    @router.post(
        "/comments/{comment_id}/response",
        response_model=CommentOut,
        response_model_exclude_unset=True,
        summary="Answer a comment (planners)",
        description="Stores or replaces the answer shown with the comment.",
    )
    def respond_to_comment(
        comment_id: str,
        body: ResponseIn,
        service: Annotated[CommentService, Depends(get_comments)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        caller = authorize(token, Action.MODERATE_COMMENTS)
        _known(comment_id)
        return _comment_out(service.respond(comment_id, body.text, person_of(caller)), True)

    return router
