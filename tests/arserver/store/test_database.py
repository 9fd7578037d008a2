"""The database: created and migrated on first use, on SQLite and on PostgreSQL + PostGIS."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from arserver.config import Settings
from arserver.store.database import DatabaseError, head_revision, open_database, schema_revision
from tests.arserver.support import insert_asset


@pytest.fixture(params=["sqlite", "postgresql"])
def first_use(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings of a database that does not exist yet (SQLite) or is empty (PostgreSQL)."""
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path / "data")
    url = request.getfixturevalue("empty_postgres_url")
    return Settings(data_dir=tmp_path / "data", database_url=url)


def test_first_use_creates_the_schema_and_reopening_is_a_no_op(first_use: Settings) -> None:
    settings = first_use
    for _ in range(2):
        engine = open_database(settings)
        try:
            assert schema_revision(engine) == head_revision()
        finally:
            engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: pytest.TempPathFactory) -> None:
    engine = open_database(Settings(data_dir=tmp_path))  # type: ignore[arg-type]
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_the_spatial_index_finds_assets_by_extent(engine: Engine) -> None:
    insert_asset(engine, "schiphol", extent=(4.75, 52.30, 4.77, 52.32))
    insert_asset(engine, "maastricht", extent=(5.68, 50.84, 5.70, 50.86))
    insert_asset(engine, "unplaced")
    if engine.dialect.name == "postgresql":
        query = (
            "SELECT id FROM assets "
            "WHERE extent && ST_MakeEnvelope(:w, :s, :e, :n, 4326) ORDER BY id"
        )
    else:
        query = (
            "SELECT a.id FROM assets a JOIN asset_extents r ON r.pk = a.pk "
            "WHERE r.west <= :e AND r.east >= :w AND r.south <= :n AND r.north >= :s ORDER BY a.id"
        )
    with engine.connect() as connection:
        found = connection.execute(
            text(query), {"w": 4.0, "s": 52.0, "e": 5.0, "n": 53.0}
        ).scalars()
        assert list(found) == ["schiphol"]
        everything = connection.execute(
            text(query), {"w": 3.0, "s": 50.0, "e": 8.0, "n": 54.0}
        ).scalars()
        assert list(everything) == ["maastricht", "schiphol"]
        connection.execute(text("UPDATE assets SET west = 5.0, east = 5.1 WHERE id = 'schiphol'"))
        moved = connection.execute(
            text(query), {"w": 4.0, "s": 52.0, "e": 4.9, "n": 53.0}
        ).scalars()
        assert list(moved) == []


def test_an_unreachable_postgresql_is_one_clear_error(tmp_path: pytest.TempPathFactory) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgresql://nobody@127.0.0.1:1/none")  # type: ignore[arg-type]
    with pytest.raises(DatabaseError, match="cannot reach the database"):
        open_database(settings)
