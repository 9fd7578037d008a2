"""Asset features: the position of each feature of a published asset (``asset_features``),
by the feature id a client reads from the tileset's feature metadata.

Written only inside the transaction that publishes the asset (see
:func:`arserver.store.assets.mark_ready`), read by :mod:`arserver.services.places`.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import NamedTuple

from sqlalchemy import Connection, delete, insert

from arserver.store.schema import asset_features

#: Rows per INSERT statement (executemany): bounds the parameters held at once.
BATCH_ROWS = 2000
#: The longest feature id stored (characters; the column's length).
MAX_FEATURE_ID = 200


class FeaturePosition(NamedTuple):
    """A feature id (storable text of at most :data:`MAX_FEATURE_ID` characters) and the
    centre of the feature's bounding box: WGS 84 longitude, latitude (degrees), ellipsoidal
    height (metres)."""

    feature_id: str
    lon: float
    lat: float
    h: float


def replace_features(
    connection: Connection, asset_id: str, features: Iterable[FeaturePosition]
) -> int:
    """Inside the caller's transaction: the asset's features become ``features`` (ids
    unique), in batched inserts; those of an earlier revision go. Returns how many."""
    delete_features(connection, asset_id)
    written = 0
    rows = iter(features)
    while batch := list(islice(rows, BATCH_ROWS)):
        connection.execute(
            insert(asset_features),
            [{"asset_id": asset_id, **feature._asdict()} for feature in batch],
        )
        written += len(batch)
    return written


def delete_features(connection: Connection, asset_id: str) -> None:
    """Inside the caller's transaction: the asset has no features any more."""
    connection.execute(delete(asset_features).where(asset_features.c.asset_id == asset_id))
