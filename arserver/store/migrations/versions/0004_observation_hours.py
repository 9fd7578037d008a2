"""Hourly aggregates of observations, kept after the raw readings expire.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "observation_hours",
        sa.Column(
            "datastream_id",
            sa.Integer,
            sa.ForeignKey("datastreams.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("sum", sa.Float, nullable=False),
        sa.Column("min", sa.Float, nullable=False),
        sa.Column("max", sa.Float, nullable=False),
    )
    op.create_index("observations_time", "observations", ["time"])


def downgrade() -> None:
    op.drop_index("observations_time", "observations")
    op.drop_table("observation_hours")
