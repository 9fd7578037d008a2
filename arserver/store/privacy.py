"""The SQL behind the export and erasure of one person's data
(:mod:`arserver.services.privacy`): their tokens and the alerts acknowledged under their
tokens' names or their OpenID Connect subject id. (Their audit entries are in
:mod:`arserver.store.audit`.) Lists are bounded by a ``limit`` and give the newest records,
oldest of them first."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, func, select, update

from arserver.store.schema import alerts, tokens

#: What an erased token is called from then on.
ERASED_NAME = ""

_TOKEN_FIELDS = (
    tokens.c.id, tokens.c.name, tokens.c.role, tokens.c.scope, tokens.c.created_at,
    tokens.c.expires_at, tokens.c.revoked_at,
)  # fmt: skip


def token_ids_named(connection: Connection, name: str) -> list[str]:
    """The ids of the tokens called exactly ``name``."""
    query = select(tokens.c.id).where(tokens.c.name == name).order_by(tokens.c.id)
    return list(connection.execute(query).scalars())


def token_rows(connection: Connection, ids: Collection[str], limit: int) -> list[dict[str, Any]]:
    """The ``limit`` newest tokens of ``ids`` as the token list shows them (never a hash),
    oldest of them first."""
    if not ids:
        return []
    query = (
        select(*_TOKEN_FIELDS)
        .where(tokens.c.id.in_(sorted(ids)))
        .order_by(tokens.c.created_at.desc(), tokens.c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in connection.execute(query)][::-1]


def token_count(connection: Connection, ids: Collection[str]) -> int:
    """How many of the tokens of ``ids`` exist."""
    if not ids:
        return 0
    query = select(func.count()).select_from(tokens).where(tokens.c.id.in_(sorted(ids)))
    return int(connection.execute(query).scalar_one())


def token_names(connection: Connection, ids: Collection[str]) -> list[str]:
    """The distinct names of the tokens of ``ids`` (erased ones left out)."""
    if not ids:
        return []
    query = select(tokens.c.name).where(tokens.c.id.in_(sorted(ids))).distinct()
    return sorted(name for name in connection.execute(query).scalars() if name != ERASED_NAME)


def blank_token_names(connection: Connection, ids: Collection[str]) -> int:
    """Set the names of the tokens of ``ids`` to :data:`ERASED_NAME`; how many changed."""
    if not ids:
        return 0
    changed: int = connection.execute(
        update(tokens)
        .where(tokens.c.id.in_(sorted(ids)), tokens.c.name != ERASED_NAME)
        .values(name=ERASED_NAME)
    ).rowcount
    return changed


def acknowledgements_by(
    connection: Connection, names: Collection[str], limit: int
) -> list[dict[str, Any]]:
    """The ``limit`` newest alerts acknowledged under one of ``names`` (alerts record the
    token's name, or an OpenID Connect caller's subject id), oldest of them first."""
    if not names:
        return []
    query = (
        select(
            alerts.c.id, alerts.c.sensor_id, alerts.c.kind, alerts.c.acknowledged_at,
            alerts.c.acknowledged_by,
        )
        .where(alerts.c.acknowledged_by.in_(sorted(names)))
        .order_by(alerts.c.acknowledged_at.desc(), alerts.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    return [dict(row._mapping) for row in connection.execute(query)][::-1]


def acknowledgement_count(connection: Connection, names: Collection[str]) -> int:
    """How many alerts :func:`acknowledgements_by` chooses from."""
    if not names:
        return 0
    query = (
        select(func.count()).select_from(alerts).where(alerts.c.acknowledged_by.in_(sorted(names)))
    )
    return int(connection.execute(query).scalar_one())


def erase_acknowledgements(connection: Connection, names: Collection[str]) -> int:
    """Clear ``acknowledged_by`` where it is one of ``names`` (the acknowledgement and its time
    stay); how many alerts changed."""
    if not names:
        return 0
    changed: int = connection.execute(
        update(alerts)
        .where(alerts.c.acknowledged_by.in_(sorted(names)))
        .values(acknowledged_by=None)
    ).rowcount
    return changed
