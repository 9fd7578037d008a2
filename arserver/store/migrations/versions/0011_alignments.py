"""Alignments of headsets' tracking frames to the world, for live subscriptions that name one.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.create_table(
        "alignments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("origin_lon", sa.Float(), nullable=False),
        sa.Column("origin_lat", sa.Float(), nullable=False),
        sa.Column("origin_h", sa.Float(), nullable=False),
        sa.Column("matrix", sa.JSON(), nullable=False),
        sa.Column("up", sa.String(1), nullable=False),
        sa.Column("rms_m", sa.Float(), nullable=False),
    )
    op.create_index("alignments_owner", "alignments", ["owner", "created_at"])


def downgrade() -> None:
    op.drop_index("alignments_owner", "alignments")
    op.drop_table("alignments")
