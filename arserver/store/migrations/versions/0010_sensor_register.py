"""The sensor register's fields (owner contact and chamber-of-commerce number, sensor type, the
area a mobile sensor moves in, themes, personal data with its privacy statement and legal
ground, project), whether a sensor's data is public, and the observed properties (one per
datastream kind, with an integer id for the SensorThings API).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    with op.batch_alter_table("sensors") as table:
        table.add_column(
            sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        table.add_column(sa.Column("contact", sa.String(200)))
        table.add_column(sa.Column("kvk", sa.String(8)))
        table.add_column(sa.Column("sensor_type", sa.String(100)))
        table.add_column(sa.Column("area", sa.JSON()))
        table.add_column(sa.Column("themes", sa.JSON()))
        table.add_column(
            sa.Column("personal_data", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        table.add_column(sa.Column("privacy_statement", sa.String(500)))
        table.add_column(sa.Column("legal_ground", sa.String(30)))
        table.add_column(sa.Column("project", sa.String(200)))
    op.create_table(
        "observed_properties",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(50), nullable=False, unique=True),
    )
    op.execute(
        "INSERT INTO observed_properties (kind) SELECT DISTINCT kind FROM datastreams ORDER BY kind"
    )


def downgrade() -> None:
    op.drop_table("observed_properties")
    with op.batch_alter_table("sensors") as table:
        for name in (
            "project", "legal_ground", "privacy_statement", "personal_data", "themes", "area",
            "sensor_type", "kvk", "contact", "public",
        ):  # fmt: skip
            table.drop_column(name)
