"""API tokens: random secrets shown once, stored only as SHA-256 hashes, each with one role.

A token is 32 random bytes (URL-safe text, prefixed ``ars_`` so that secret scanners and people
recognise it). Its hash is enough to look it up: with 256 bits of entropy a fast hash is safe,
and lookups stay O(1). What each role may do is :mod:`arserver.security.policy`.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select, update

from arserver.errors import ArserverError
from arserver.security.policy import ROLES
from arserver.store.schema import tokens

PREFIX = "ars_"


class TokenError(ArserverError):
    """A token request that cannot be honoured (unknown role, empty name)."""


@dataclass(frozen=True)
class TokenRecord:
    id: str
    name: str
    role: str
    created_at: datetime


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(engine: Engine, role: str, name: str | None = None) -> tuple[str, TokenRecord]:
    """A new token: returns the secret (shown once, never stored) and its record."""
    if role not in ROLES:
        raise TokenError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    secret = PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(
        id=uuid.uuid4().hex,
        name=(name or f"{role} token").strip()[:200] or f"{role} token",
        role=role,
        created_at=datetime.now(UTC),
    )
    with engine.begin() as connection:
        connection.execute(
            insert(tokens).values(
                id=record.id,
                name=record.name,
                role=record.role,
                token_hash=_hash(secret),
                created_at=record.created_at,
            )
        )
    return secret, record


def authenticate(engine: Engine, secret: str) -> TokenRecord | None:
    """The record of a valid, unrevoked token, or None."""
    if not secret.startswith(PREFIX):
        return None
    with engine.connect() as connection:
        row = connection.execute(
            select(tokens.c.id, tokens.c.name, tokens.c.role, tokens.c.created_at).where(
                tokens.c.token_hash == _hash(secret), tokens.c.revoked_at.is_(None)
            )
        ).first()
    if row is None:
        return None
    return TokenRecord(row.id, row.name, row.role, row.created_at)


def revoke_token(engine: Engine, token_id: str) -> bool:
    """Revoke a token by its id; False if there is no such unrevoked token."""
    with engine.begin() as connection:
        result = connection.execute(
            update(tokens)
            .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return bool(result.rowcount)
