"""Tokens, assets with a spatial index on their extent, and conversion jobs.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "assets",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("layer", sa.String(100), nullable=False),
        sa.Column("crs", sa.String(100)),
        sa.Column("origin", sa.JSON),
        sa.Column("heading", sa.Float, nullable=False),
        sa.Column("lifecycle", sa.String(20), nullable=False),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("stage", sa.String(100)),
        sa.Column("error", sa.Text),
        sa.Column("source_name", sa.String(255)),
        sa.Column("source_bytes", sa.Integer),
        sa.Column("summary", sa.JSON),
        sa.Column("west", sa.Float),
        sa.Column("south", sa.Float),
        sa.Column("east", sa.Float),
        sa.Column("north", sa.Float),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("assets_layer", "assets", ["layer"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "asset_id",
            sa.String(32),
            sa.ForeignKey("assets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("worker", sa.String(100)),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.Text),
    )
    op.create_index("jobs_status_created", "jobs", ["status", "created_at"])
    if op.get_bind().dialect.name == "postgresql":
        _postgis_extent_index()
    else:
        _sqlite_rtree_extent_index()


def _postgis_extent_index() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute(
        "ALTER TABLE assets ADD COLUMN extent geometry(Polygon, 4326) GENERATED ALWAYS AS "
        "(CASE WHEN west IS NULL THEN NULL "
        "ELSE ST_MakeEnvelope(west, south, east, north, 4326) END) STORED"
    )
    op.execute("CREATE INDEX assets_extent ON assets USING gist (extent)")


def _sqlite_rtree_extent_index() -> None:
    op.execute("CREATE VIRTUAL TABLE asset_extents USING rtree(pk, west, east, south, north)")
    # Triggers keep the R*Tree equal to the extent columns, whatever writes the assets.
    op.execute(
        "CREATE TRIGGER asset_extents_insert AFTER INSERT ON assets WHEN new.west IS NOT NULL "
        "BEGIN INSERT INTO asset_extents "
        "VALUES (new.pk, new.west, new.east, new.south, new.north); END"
    )
    op.execute(
        "CREATE TRIGGER asset_extents_update AFTER UPDATE OF west, south, east, north ON assets "
        "BEGIN DELETE FROM asset_extents WHERE pk = old.pk; "
        "INSERT INTO asset_extents SELECT new.pk, new.west, new.east, new.south, new.north "
        "WHERE new.west IS NOT NULL; END"
    )
    op.execute(
        "CREATE TRIGGER asset_extents_delete AFTER DELETE ON assets "
        "BEGIN DELETE FROM asset_extents WHERE pk = old.pk; END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE IF EXISTS asset_extents")
    op.drop_table("jobs")
    op.drop_table("assets")
    op.drop_table("tokens")
