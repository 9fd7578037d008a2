"""``/api/v1/privacy/subjects/{subject}``: export (``GET``) and erasure (``DELETE``) of one
person's data, for admins (AVG articles 15 and 17). ``subject`` is ``token:ID``, ``name:TEXT``
or ``oidc:...`` (see :mod:`arserver.services.privacy`); the audit log records these requests
with the subject's digest, never the subject."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from arserver.api.deps import optional_token
from arserver.security.policy import Action, authorize
from arserver.security.tokens import TokenRecord
from arserver.services.privacy import MAX_RECORDS, PrivacyService, Subject

SubjectPath = Annotated[
    str,
    Path(
        max_length=210,
        description="token:ID, name:TEXT (tokens with exactly that name) or oidc:SUBJECT",
        examples=["token:3f2a9c", "name:tablet 3"],
    ),
]


class SubjectExport(BaseModel):
    subject: str
    exported_at: datetime
    data: dict[str, list[dict[str, Any]]] = Field(
        description="Per kind of data (tokens, audit_entries, alert_acknowledgements): the "
        f"records held about the subject, at most {MAX_RECORDS} of each (the newest), oldest "
        "first"
    )
    totals: dict[str, int] = Field(description="Per kind of data: how many records are held")
    more: dict[str, list[str]] = Field(
        description="For each kind with more records than `data` holds: the API paths that "
        "page through all of them (admin)"
    )


class SubjectErasure(BaseModel):
    subject: str
    erased_at: datetime
    revoked_tokens: int = Field(description="Tokens revoked now (already revoked: not counted)")
    erased: dict[str, int] = Field(description="Per kind of data: records erased now")


def get_privacy(request: Request) -> PrivacyService:
    privacy: PrivacyService = request.app.state.privacy
    return privacy


def privacy_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/privacy", tags=["privacy"])

    @router.get(
        "/subjects/{subject}",
        response_model=SubjectExport,
        summary="Everything arserver holds about one person (admin)",
    )
    def export(
        subject: SubjectPath,
        privacy: Annotated[PrivacyService, Depends(get_privacy)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        authorize(token, Action.MANAGE_PERSONAL_DATA)
        return privacy.export(Subject.parse(subject))

    @router.delete(
        "/subjects/{subject}",
        response_model=SubjectErasure,
        summary="Erase one person's data (admin): revoke their tokens, blank their names, "
        "unlink their audit entries",
    )
    def erase(
        subject: SubjectPath,
        privacy: Annotated[PrivacyService, Depends(get_privacy)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        authorize(token, Action.MANAGE_PERSONAL_DATA)
        return privacy.erase(Subject.parse(subject))

    return router
