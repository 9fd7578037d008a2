"""Ingest counters in shards: each batch adds to one of 16 rows per cause, picked at random,
so that concurrent writers (several server or ingest processes) do not wait for each other's
commit on one row; a count is the sum of its shards.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.create_table(
        "ingest_counter_shards",
        sa.Column("cause", sa.String(50), primary_key=True),
        sa.Column("shard", sa.SmallInteger(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.execute(
        "INSERT INTO ingest_counter_shards (cause, shard, count) "
        "SELECT cause, 0, count FROM ingest_counters"
    )
    op.drop_table("ingest_counters")
    op.rename_table("ingest_counter_shards", "ingest_counters")


def downgrade() -> None:
    op.create_table(
        "ingest_counters_whole",
        sa.Column("cause", sa.String(50), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.execute(
        "INSERT INTO ingest_counters_whole (cause, count) "
        "SELECT cause, SUM(count) FROM ingest_counters GROUP BY cause"
    )
    op.drop_table("ingest_counters")
    op.rename_table("ingest_counters_whole", "ingest_counters")
