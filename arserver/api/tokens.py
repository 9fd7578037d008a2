"""``/api/v1/tokens``: API tokens for admins: create (the secret is shown once), list, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, Field

from arserver.api.deps import get_tokens, optional_token
from arserver.errors import NotFoundError
from arserver.security.policy import ROLES, Action, authorize, permits
from arserver.security.tokens import TokenInfo, TokenRecord, parse_lifetime
from arserver.services.tokens import TokenService


class TokenIn(BaseModel):
    """A token to create. ``expires``: a lifetime such as ``30d``, ``12h`` or ``2w`` (none:
    until revoked); ``scope``: ``asset:ID`` or ``layer:NAME`` to narrow it to reading those
    assets and their tiles."""

    model_config = {"extra": "forbid"}

    role: str = Field(max_length=20, description=f"One of {', '.join(ROLES)}")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    expires: str | None = Field(default=None, max_length=20, examples=["30d"])
    scope: str | None = Field(default=None, max_length=140, examples=["layer:cables"])


class TokenOut(BaseModel):
    """A token as listed (never its secret). Times are UTC."""

    id: str
    name: str
    role: str
    scope: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None = None


class NewToken(TokenOut):
    secret: str = Field(description="The token itself: shown this once, never again")


class TokenList(BaseModel):
    tokens: list[TokenOut]


class CurrentToken(BaseModel):
    """The caller's own token: who it is and what it may do, so that a client shows only what
    will work (the server still checks every request)."""

    id: str
    name: str
    role: str
    scope: str | None
    expires_at: datetime | None
    actions: list[str] = Field(
        description="Policy actions this token may do, e.g. read_assets, acknowledge_alerts"
    )


def _out(info: TokenInfo) -> TokenOut:
    return TokenOut(**{name: getattr(info, name) for name in TokenOut.model_fields})


def tokens_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=NewToken,
        summary="Create a token (admin); its secret is in this answer only",
    )
    def create(
        body: TokenIn,
        tokens: Annotated[TokenService, Depends(get_tokens)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> NewToken:
        authorize(token, Action.MANAGE_TOKENS)
        lifetime = parse_lifetime(body.expires) if body.expires is not None else None
        secret, record = tokens.create(body.role, body.name, expires_in=lifetime, scope=body.scope)
        return NewToken(
            id=record.id, name=record.name, role=record.role,
            scope=str(record.scope) if record.scope else None, created_at=record.created_at,
            expires_at=record.expires_at, secret=secret,
        )  # fmt: skip

    @router.get("", response_model=TokenList, summary="Every token, newest first (admin)")
    def index(
        tokens: Annotated[TokenService, Depends(get_tokens)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> TokenList:
        authorize(token, Action.MANAGE_TOKENS)
        return TokenList(tokens=[_out(info) for info in tokens.list()])

    @router.get(
        "/current",
        response_model=CurrentToken,
        summary="The caller's own token: role, scope and the actions it may do",
    )
    def current(token: Annotated[TokenRecord | None, Depends(optional_token)]) -> CurrentToken:
        caller = authorize(token, Action.INTROSPECT)
        return CurrentToken(
            id=caller.id, name=caller.name, role=caller.role,
            scope=str(caller.scope) if caller.scope else None, expires_at=caller.expires_at,
            actions=[action.name.lower() for action in Action if permits(caller, action)],
        )  # fmt: skip

    @router.delete(
        "/{token_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Revoke a token (admin); its open live connections are closed with 4003",
    )
    def revoke(
        token_id: str,
        tokens: Annotated[TokenService, Depends(get_tokens)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> Response:
        authorize(token, Action.MANAGE_TOKENS)
        if not tokens.revoke(token_id):
            raise NotFoundError(f"no token {token_id[:64]!r} that is not revoked already")
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router
