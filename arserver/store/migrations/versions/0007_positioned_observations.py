"""An index on the times of raw observations that still have a position, so that stripping
expired positions (mobile_retention_days) reads only those, not every older row.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_index(
        "observations_positioned",
        "observations",
        ["time"],
        sqlite_where=sa.text("lon IS NOT NULL"),
        postgresql_where=sa.text("lon IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("observations_positioned", table_name="observations")
