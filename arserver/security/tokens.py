"""API tokens: random secrets shown once, stored only as SHA-256 hashes, each with one role.

A token is 32 random bytes (URL-safe text, prefixed ``ars_`` so that secret scanners and people
recognise it). Its hash is enough to look it up: with 256 bits of entropy a fast hash is safe,
and lookups stay O(1). What each role may do is :mod:`arserver.security.policy`.

A token may expire (``expires_at``) and may be narrowed to one asset or one layer (``scope``,
like an asset-scoped token of Cesium ion): such a token reads only that asset's metadata and
tiles, or those of the layer's assets, and nothing else. Revoking a token takes effect for
every request from then on; open live connections are closed by the token service.

:class:`Authenticator` is how the API asks who presents a secret: one of these tokens, or, when
one is configured, a token of an outside issuer (:mod:`arserver.security.oidc`: OpenID Connect
JWTs of the municipality's identity provider), both as a :class:`TokenRecord`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, Engine, insert, or_, select, update

from arserver.errors import ArserverError
from arserver.security.policy import ROLES, ROUND_SCOPES, Scope
from arserver.store.schema import tokens

PREFIX = "ars_"
#: The longest lifetime a token can be given (``--expires``).
MAX_LIFETIME = timedelta(days=3650)
_LIFETIME = re.compile(r"^\s*(\d{1,6})\s*([mhdw])\s*$")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_UNITS["w"] = timedelta(weeks=1)


class TokenError(ArserverError):
    """A token request that cannot be honoured (unknown role, bad lifetime or scope)."""


@dataclass(frozen=True)
class TokenRecord:
    """A valid token as a request presents it (never its secret). ``expires_at`` and
    ``created_at`` are timezone-aware UTC; ``scope`` None means everything its role may."""

    id: str
    name: str
    role: str
    created_at: datetime
    expires_at: datetime | None = None
    scope: Scope | None = None


@dataclass(frozen=True)
class TokenInfo:
    """A token as the token list shows it, revoked and expired ones included."""

    id: str
    name: str
    role: str
    scope: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


def parse_lifetime(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m`` or ``2w`` as a duration (at most :data:`MAX_LIFETIME`)."""
    match = _LIFETIME.match(text)
    if match is None:
        raise TokenError(f"a lifetime is a number and m, h, d or w (e.g. 30d), got {text[:50]!r}")
    lifetime = int(match.group(1)) * _UNITS[match.group(2)]
    if not timedelta(0) < lifetime <= MAX_LIFETIME:
        raise TokenError(f"a lifetime is more than 0 and at most {MAX_LIFETIME.days} days")
    return lifetime


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(
    engine: Engine,
    role: str,
    name: str | None = None,
    *,
    expires_in: timedelta | None = None,
    scope: str | None = None,
) -> tuple[str, TokenRecord]:
    """A new token: returns the secret (shown once, never stored) and its record.
    ``expires_in``: its lifetime (None: until revoked); ``scope``: ``asset:ID`` or
    ``layer:NAME`` (None: everything its role may)."""
    with engine.begin() as connection:
        return create_token_on(connection, role, name, expires_in=expires_in, scope=scope)


def create_token_on(
    connection: Connection,
    role: str,
    name: str | None = None,
    *,
    expires_in: timedelta | None = None,
    expires_at: datetime | None = None,
    scope: str | None = None,
) -> tuple[str, TokenRecord]:
    """:func:`create_token` inside the caller's transaction on ``connection`` (the caller
    commits, and the token exists only if it does). ``expires_at``: an exact moment of expiry
    (timezone-aware) instead of ``expires_in``, chosen by the caller."""
    if expires_in is not None and expires_at is not None:
        raise TokenError("a token has a lifetime or a moment of expiry, not both")
    if expires_at is not None and expires_at.tzinfo is None:
        raise TokenError("a token's moment of expiry needs a timezone")
    if role not in ROLES:
        raise TokenError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if expires_in is not None and not timedelta(0) < expires_in <= MAX_LIFETIME:
        raise TokenError(f"a lifetime is more than 0 and at most {MAX_LIFETIME.days} days")
    try:
        narrowed = Scope.parse(scope) if scope is not None else None
    except ValueError as exc:
        raise TokenError(str(exc)) from None
    if (role == "resident") != (narrowed is not None and narrowed.kind in ROUND_SCOPES):
        raise TokenError("resident tokens, and only they, are limited to one round (round:ID)")
    now = datetime.now(UTC)
    secret = PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(
        id=uuid.uuid4().hex,
        name=(name or f"{role} token").strip()[:200] or f"{role} token",
        role=role,
        created_at=now,
        expires_at=now + expires_in if expires_in is not None else expires_at,
        scope=narrowed,
    )
    connection.execute(
        insert(tokens).values(
            id=record.id,
            name=record.name,
            role=record.role,
            token_hash=_hash(secret),
            created_at=record.created_at,
            expires_at=record.expires_at,
            scope=str(narrowed) if narrowed is not None else None,
        )
    )
    return secret, record


def authenticate(engine: Engine, secret: str) -> TokenRecord | None:
    """The record of a valid token (not revoked, not expired), or None."""
    if not secret.startswith(PREFIX) or len(secret) > 100:
        return None
    now = datetime.now(UTC)
    with engine.connect() as connection:
        row = connection.execute(
            select(
                tokens.c.id, tokens.c.name, tokens.c.role, tokens.c.created_at,
                tokens.c.expires_at, tokens.c.scope,
            ).where(
                tokens.c.token_hash == _hash(secret),
                tokens.c.revoked_at.is_(None),
                or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > now),
            )
        ).first()  # fmt: skip
    if row is None:
        return None
    scope = Scope.parse(row.scope) if row.scope else None
    return TokenRecord(row.id, row.name, row.role, row.created_at, row.expires_at, scope)


def list_tokens(engine: Engine) -> list[TokenInfo]:
    """Every token, newest first (without secrets or hashes)."""
    query = select(
        tokens.c.id, tokens.c.name, tokens.c.role, tokens.c.scope, tokens.c.created_at,
        tokens.c.expires_at, tokens.c.revoked_at,
    ).order_by(tokens.c.created_at.desc(), tokens.c.id)  # fmt: skip
    with engine.connect() as connection:
        return [TokenInfo(*row) for row in connection.execute(query)]


def invalid_among(engine: Engine, token_ids: Collection[str]) -> set[str]:
    """Those of ``token_ids`` that are no longer valid: revoked, expired or unknown."""
    if not token_ids:
        return set()
    now = datetime.now(UTC)
    query = select(tokens.c.id).where(
        tokens.c.id.in_(sorted(token_ids)),
        tokens.c.revoked_at.is_(None),
        or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > now),
    )
    with engine.connect() as connection:
        valid = set(connection.execute(query).scalars())
    return set(token_ids) - valid


def revoke_token(engine: Engine, token_id: str) -> bool:
    """Revoke a token by its id; False if there is no such unrevoked token."""
    with engine.begin() as connection:
        result = connection.execute(
            update(tokens)
            .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return bool(result.rowcount)


class ExternalVerifier(Protocol):
    """Tokens issued elsewhere (an OpenID Connect provider), seen as token records
    whose ids it alone recognises (they cannot collide with the ids of our tokens)."""

    def recognises(self, secret: str) -> bool:
        """Whether ``secret`` has the shape of this verifier's tokens (cheap, no I/O)."""
        ...

    def verify(self, secret: str) -> TokenRecord | None:
        """The record of a valid token, or None. May block on the network: never call it on
        the event loop."""
        ...

    def owns(self, token_id: str) -> bool:
        """Whether ``token_id`` is the id of one of this verifier's records."""
        ...

    def valid_until(self, record: TokenRecord) -> datetime:
        """When ``record`` (one of this verifier's) stops being accepted (UTC)."""
        ...

    def invalid_among(self, token_ids: Collection[str]) -> set[str]:
        """Those of ``token_ids`` (all this verifier's) that are no longer accepted."""
        ...


class Authenticator:
    """Who presents a secret: our ``ars_`` tokens in ``engine``, and the tokens of ``external``
    (None: ours only, which is the behaviour without OpenID Connect). Built once per
    application; safe to share between threads."""

    def __init__(self, engine: Engine, external: ExternalVerifier | None = None) -> None:
        self.engine = engine
        self.external = external

    def authenticate(self, secret: str) -> TokenRecord | None:
        """The record of a valid token, or None. Blocks on the database or the network: call
        it off the event loop (``run_in_threadpool``)."""
        external = self.external
        if external is not None and not secret.startswith(PREFIX) and external.recognises(secret):
            return external.verify(secret)
        return authenticate(self.engine, secret)

    def valid_until(self, record: TokenRecord) -> datetime | None:
        """When ``record`` stops being accepted (UTC; None: until revoked)."""
        if self.external is not None and self.external.owns(record.id):
            return self.external.valid_until(record)
        return record.expires_at

    def invalid_among(self, token_ids: Collection[str]) -> set[str]:
        """Those of ``token_ids`` that are no longer accepted: ours revoked, expired or unknown,
        outside ones judged by their verifier (by their own expiry, not by our table)."""
        external = self.external
        outside = {i for i in token_ids if external is not None and external.owns(i)}
        ours = set(token_ids) - outside
        invalid = invalid_among(self.engine, ours)
        if outside and external is not None:
            invalid |= external.invalid_among(outside)
        return invalid
