"""Parking: zones and car parks (places) with their capacity, area, bays and counter, and the
history of their occupancy.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_table(
        "parking_places",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(100), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("capacity", sa.Integer()),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("area", sa.JSON()),
        sa.Column("west", sa.Float(), nullable=False),
        sa.Column("south", sa.Float(), nullable=False),
        sa.Column("east", sa.Float(), nullable=False),
        sa.Column("north", sa.Float(), nullable=False),
        sa.Column("bay_sensors", sa.JSON()),
        sa.Column("counter_sensor", sa.String(100)),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("operator", sa.String(200)),
        sa.Column("is_open", sa.Boolean()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("parking_places_counter", "parking_places", ["counter_sensor"])
    op.create_index("parking_places_extent", "parking_places", ["west", "east", "south", "north"])
    op.create_table(
        "parking_occupancy",
        sa.Column(
            "place_pk",
            sa.Integer(),
            sa.ForeignKey("parking_places.pk", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("time", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("capacity", sa.Float(), nullable=False),
        sa.Column("occupied", sa.Float(), nullable=False),
        sa.Column("free", sa.Float(), nullable=False),
        sa.Column("unknown", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("parking_occupancy")
    op.drop_index("parking_places_extent", table_name="parking_places")
    op.drop_index("parking_places_counter", table_name="parking_places")
    op.drop_table("parking_places")
