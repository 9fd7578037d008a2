"""Threshold rules, their per-sensor state, and alerts.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "rules",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("sensor_id", sa.String(100)),
        sa.Column("above", sa.Boolean, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("reset", sa.Float, nullable=False),
        sa.Column("window_s", sa.Integer, nullable=False),
        sa.Column("open_after_s", sa.Integer, nullable=False),
        sa.Column("resolve_after_s", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("rules_kind", "rules", ["kind"])
    op.create_table(
        "rule_states",
        sa.Column(
            "rule_id",
            sa.String(32),
            sa.ForeignKey("rules.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("sensor_id", sa.String(100), primary_key=True),
        sa.Column("last_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("breach_since", sa.DateTime(timezone=True)),
        sa.Column("clear_since", sa.DateTime(timezone=True)),
        sa.Column("alert_id", sa.String(32)),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "rule_id", sa.String(32), sa.ForeignKey("rules.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("sensor_id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_by", sa.String(200)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
    )
    op.create_index("alerts_status", "alerts", ["status", "opened_at"])


def downgrade() -> None:
    op.drop_table("alerts")
    op.drop_table("rule_states")
    op.drop_table("rules")
