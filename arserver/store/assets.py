"""Asset rows: the repository behind :class:`~arserver.services.assets.AssetService` and the
tile routes. Rows cross to the API as :class:`AssetRow`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypedDict, cast

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    delete,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
)

from arserver.store.features import FeaturePosition, delete_features, replace_features
from arserver.store.schema import assets, jobs

if TYPE_CHECKING:  # a type only: the store never runs the converter
    from tiles.convert import ConversionSummary


class AssetRow(TypedDict):
    """An asset as stored. ``origin``: ETRS89 lon, lat (degrees), ellipsoidal h (m) for local
    models; ``west..north``: the WGS 84 extent once ready (None before); ``summary``: the
    conversion summary of :func:`tiles.convert.convert`; times timezone-aware UTC."""

    pk: int
    id: str
    name: str
    layer: str
    crs: str | None
    origin: list[float] | None
    heading: float
    lifecycle: str
    public: bool
    status: str
    progress: float
    stage: str | None
    error: str | None
    source_name: str | None
    source_bytes: int | None
    summary: ConversionSummary | None
    west: float | None
    south: float | None
    east: float | None
    north: float | None
    created_at: datetime
    updated_at: datetime


def extent_of(row: AssetRow) -> tuple[float, float, float, float] | None:
    """West, south, east, north (WGS 84 degrees) of a converted asset; None before."""
    west, south, east, north = row["west"], row["south"], row["east"], row["north"]
    if west is None or south is None or east is None or north is None:
        return None
    return west, south, east, north


def _row(mapping: Any) -> AssetRow:
    return cast(AssetRow, dict(mapping))


def tile_access(engine: Engine, asset_id: str) -> tuple[bool, str] | None:
    """Whether an asset's tiles are public, and its layer; None if there is no such asset."""
    with engine.connect() as connection:
        row = connection.execute(
            select(assets.c.public, assets.c.layer).where(assets.c.id == asset_id)
        ).first()
    return None if row is None else (bool(row.public), str(row.layer))


LIFECYCLES = ("existing", "planned", "removed")


def create_asset(connection: Connection, values: dict[str, Any]) -> str:
    """Insert a queued asset inside the caller's transaction; returns its new id."""
    asset_id = uuid.uuid4().hex[:16]
    now = datetime.now(UTC)
    connection.execute(
        insert(assets).values(
            id=asset_id, status="queued", progress=0.0, stage="queued",
            created_at=now, updated_at=now, **values,
        )
    )  # fmt: skip
    return asset_id


def asset_ids(engine: Engine) -> set[str]:
    """The id of every asset (whatever its status)."""
    with engine.connect() as connection:
        return set(connection.execute(select(assets.c.id)).scalars())


def get_asset(engine: Engine, asset_id: str) -> AssetRow | None:
    with engine.connect() as connection:
        row = connection.execute(select(assets).where(assets.c.id == asset_id)).first()
    return None if row is None else _row(row._mapping)


def set_state(engine: Engine, asset_id: str, **values: Any) -> None:
    """Change an asset's conversion state (status, progress, stage, error, result)."""
    with engine.begin() as connection:
        connection.execute(
            update(assets)
            .where(assets.c.id == asset_id)
            .values(updated_at=datetime.now(UTC), **values)
        )


def mark_ready(
    engine: Engine, asset_id: str, features: Iterable[FeaturePosition], **values: Any
) -> bool:
    """In one transaction: the asset's conversion state becomes ``values`` (its status
    ``ready``, its summary and extent) and its features ``features``, replacing those of an
    earlier revision. False (and nothing written) if there is no such asset any more."""
    with engine.begin() as connection:
        result = connection.execute(
            update(assets)
            .where(assets.c.id == asset_id)
            .values(updated_at=datetime.now(UTC), **values)
        )
        if not result.rowcount:
            return False
        replace_features(connection, asset_id, features)
    return True


def list_assets(
    engine: Engine,
    *,
    layer: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    public_only: bool = False,
    limit: int = 100,
) -> list[AssetRow]:
    """Assets newest first, filtered by layer and by extent (spatial index on both backends)."""
    query = select(assets).order_by(assets.c.created_at.desc(), assets.c.pk.desc()).limit(limit)
    if layer is not None:
        query = query.where(assets.c.layer == layer)
    if public_only:
        query = query.where(assets.c.public.is_(True))
    if bbox is not None:
        west, south, east, north = bbox
        if engine.dialect.name == "postgresql":
            envelope = func.ST_MakeEnvelope(west, south, east, north, 4326)
            query = query.where(literal_column("extent").op("&&")(envelope))
        else:
            hits = text(
                "SELECT pk FROM asset_extents WHERE west <= :e AND east >= :w "
                "AND south <= :n AND north >= :s"
            ).bindparams(w=west, s=south, e=east, n=north)
            query = query.where(assets.c.pk.in_(hits.columns(pk=Integer)))
    with engine.connect() as connection:
        return [_row(row._mapping) for row in connection.execute(query)]


def update_asset(engine: Engine, asset_id: str, values: dict[str, Any]) -> bool:
    """Change an asset's metadata; False if there is no such asset."""
    with engine.begin() as connection:
        result = connection.execute(
            update(assets)
            .where(assets.c.id == asset_id)
            .values(updated_at=datetime.now(UTC), **values)
        )
    return bool(result.rowcount)


def delete_asset(engine: Engine, asset_id: str) -> AssetRow | None:
    """Remove an asset's row, its jobs and its features; returns the row as it was (None if
    there is no such asset). The caller removes its files afterwards (a crash in between
    leaves only unreferenced files)."""
    with engine.begin() as connection:
        connection.execute(delete(jobs).where(jobs.c.asset_id == asset_id))
        delete_features(connection, asset_id)  # also without a database's cascade
        row = connection.execute(
            delete(assets).where(assets.c.id == asset_id).returning(*assets.c)
        ).first()
    return None if row is None else _row(row._mapping)


def ready_assets_in_layer(engine: Engine, layer: str, *, public_only: bool) -> list[AssetRow]:
    """Ready assets of a layer, oldest first (the order of a scene)."""
    query = (
        select(assets)
        .where(assets.c.layer == layer, assets.c.status == "ready")
        .order_by(assets.c.created_at, assets.c.pk)
    )
    if public_only:
        query = query.where(assets.c.public.is_(True))
    with engine.connect() as connection:
        return [_row(row._mapping) for row in connection.execute(query)]
