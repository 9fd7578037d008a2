"""The migrations build exactly the schema the code describes (arserver/store/schema.py):
alembic's comparison of a migrated database with the metadata finds nothing to change, on
SQLite and PostgreSQL."""

from __future__ import annotations

import warnings
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from arserver.store.schema import metadata

#: Made by raw SQL in the migrations, outside the metadata: the SQLite R*Tree of asset
#: extents (and its shadow tables), PostGIS's own table, and the PostGIS column of assets.
OUTSIDE_TABLES = ("asset_extents", "spatial_ref_sys")
OUTSIDE_COLUMNS = {("assets", "extent")}
OUTSIDE_INDEXES = {"assets_extent"}


def _relevant(difference: Any) -> bool:
    kind = difference[0]
    if kind == "remove_table":
        return not difference[1].name.startswith(OUTSIDE_TABLES)
    if kind == "remove_column":
        return (difference[2], difference[3].name) not in OUTSIDE_COLUMNS
    if kind == "remove_index":
        return difference[1].name not in OUTSIDE_INDEXES
    return True


def test_the_migrated_database_matches_the_schema(engine: Engine) -> None:
    with engine.connect() as connection, warnings.catch_warnings():
        # PostGIS's geometry column of assets (made by raw SQL) is a type SQLAlchemy does not
        # reflect; the comparison still sees the column.
        warnings.filterwarnings("ignore", "Did not recognize type 'geometry'")
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, metadata) if _relevant(d)]
    assert differences == []
