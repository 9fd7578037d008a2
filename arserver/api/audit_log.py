"""``GET /api/v1/audit``: the audit log, for admins, a page at a time (oldest first)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from arserver.api.deps import optional_token
from arserver.security.policy import Action, authorize
from arserver.security.tokens import TokenRecord
from arserver.services.audit import MAX_PAGE, AuditService
from arserver.store.audit import AuditEntry


class AuditEntryOut(BaseModel):
    """One entry. ``actor`` is None once the person was erased (``actor_digest``, the salted
    hash the chain covers, stays); ``at`` is UTC."""

    seq: int
    at: datetime
    actor: str | None
    actor_digest: str
    action: str = Field(description="The route ('POST /api/v1/assets') or command")
    object: str | None
    result: str = Field(description="The HTTP status, 'ok' or 'refused'")
    origin: str | None = Field(description="The client's network (/24 or /48), or 'local'")
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next: int | None = Field(description="Pass as 'after' for the next page; null at the end")


def _out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(**{name: getattr(entry, name) for name in AuditEntryOut.model_fields})


def get_audit(request: Request) -> AuditService:
    audit: AuditService = request.app.state.audit
    return audit


def audit_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["audit"])

    @router.get(
        "/audit",
        response_model=AuditPage,
        summary="The audit log (admin), oldest first",
        description="Entries with `seq` above `after`, at most `limit` (at most "
        f"{MAX_PAGE}), of one `actor` when given. Reading the log is itself recorded. "
        "`arserver audit verify` checks the hash chain.",
    )
    def index(
        audit: Annotated[AuditService, Depends(get_audit)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
        after: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        actor: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=200,
                description="Only this actor's entries (a token id, an oidc: subject, ...)",
            ),
        ] = None,
    ) -> AuditPage:
        authorize(token, Action.READ_AUDIT)
        entries = audit.page(after, limit, actor)
        more = len(entries) == limit
        return AuditPage(entries=[_out(e) for e in entries], next=entries[-1].seq if more else None)

    return router
