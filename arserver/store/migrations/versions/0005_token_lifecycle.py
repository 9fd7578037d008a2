"""Tokens that expire, and tokens narrowed to one asset or one layer.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    with op.batch_alter_table("tokens") as table:
        table.add_column(sa.Column("expires_at", sa.DateTime(timezone=True)))
        table.add_column(sa.Column("scope", sa.String(140)))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as table:
        table.drop_column("scope")
        table.drop_column("expires_at")
