"""Asset rows: the lookups the API needs (the full repository grows with the upload API)."""

from __future__ import annotations

from sqlalchemy import Engine, select

from arserver.store.schema import assets


def public_flag(engine: Engine, asset_id: str) -> bool | None:
    """Whether an asset's tiles are public; None if there is no such asset."""
    with engine.connect() as connection:
        value = connection.execute(select(assets.c.public).where(assets.c.id == asset_id)).scalar()
    return None if value is None else bool(value)
