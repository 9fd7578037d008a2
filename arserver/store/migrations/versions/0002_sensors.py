"""Sensors with datastreams, observations (idempotent per datastream and time), ingest counters.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "sensors",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(100), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("lon", sa.Float),
        sa.Column("lat", sa.Float),
        sa.Column("h", sa.Float),
        sa.Column("dev_eui", sa.String(16), unique=True),
        sa.Column("device_fields", sa.JSON),
        sa.Column("owner", sa.String(200)),
        sa.Column("purpose", sa.String(500)),
        sa.Column("asset_id", sa.String(32)),
        sa.Column("feature_id", sa.String(100)),
        sa.Column("placed_at", sa.DateTime(timezone=True)),
        sa.Column("removed_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "datastreams",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "sensor_pk", sa.Integer, sa.ForeignKey("sensors.pk", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("unit", sa.String(30), nullable=False),
        sa.UniqueConstraint("sensor_pk", "kind", name="datastreams_sensor_kind"),
    )
    op.create_table(
        "observations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "datastream_id",
            sa.Integer,
            sa.ForeignKey("datastreams.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("lon", sa.Float),
        sa.Column("lat", sa.Float),
        sa.Column("h", sa.Float),
        sa.Column("source_id", sa.String(200)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        # One value per datastream and instant: a retried or re-delivered reading is a duplicate.
        sa.UniqueConstraint("datastream_id", "time", name="observations_stream_time"),
    )
    op.create_table(
        "ingest_counters",
        sa.Column("cause", sa.String(50), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingest_counters")
    op.drop_table("observations")
    op.drop_table("datastreams")
    op.drop_table("sensors")
