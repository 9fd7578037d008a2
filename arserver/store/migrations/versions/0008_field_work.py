"""Field work and participation: the features of published assets, inspections with their
history and photos, participation rounds, comments and their moderation history; the resident
tokens of a round found by their scope.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def _time(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "asset_features",
        sa.Column(
            "asset_id",
            sa.String(32),
            sa.ForeignKey("assets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("feature_id", sa.String(200), primary_key=True),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("h", sa.Float(), nullable=False),
    )
    op.create_table(
        "inspections",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("category", sa.String(50), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("h", sa.Float()),
        sa.Column("asset_id", sa.String(32)),
        sa.Column("feature_id", sa.String(200)),
        sa.Column("sensor_ids", sa.JSON(), nullable=False),
        sa.Column("alert_ids", sa.JSON(), nullable=False),
        sa.Column("assignee", sa.String(200)),
        sa.Column("created_by", sa.String(200)),
        _time("created_at", nullable=False),
        _time("updated_at", nullable=False),
        _time("closed_at"),
    )
    op.create_index("inspections_place", "inspections", ["lat", "lon"])
    op.create_index("inspections_created", "inspections", ["created_at", "id"])
    op.create_index("inspections_status", "inspections", ["status"])
    op.create_index("inspections_asset", "inspections", ["asset_id"])
    op.create_table(
        "inspection_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column(
            "inspection_id",
            sa.String(32),
            sa.ForeignKey("inspections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _time("at", nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.Column("change", sa.String(20), nullable=False),
        sa.Column("from_status", sa.String(20)),
        sa.Column("to_status", sa.String(20)),
        sa.Column("assignee", sa.String(200)),
        sa.Column("note", sa.Text()),
    )
    op.create_index("ix_inspection_events_inspection_id", "inspection_events", ["inspection_id"])
    op.create_table(
        "inspection_photos",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "inspection_id",
            sa.String(32),
            sa.ForeignKey("inspections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("content_type", sa.String(30), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("thumbnail", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(200)),
        _time("created_at", nullable=False),
    )
    op.create_index("ix_inspection_photos_inspection_id", "inspection_photos", ["inspection_id"])
    op.create_table(
        "rounds",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("privacy_notice", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("area", sa.JSON(), nullable=False),
        sa.Column("west", sa.Float(), nullable=False),
        sa.Column("south", sa.Float(), nullable=False),
        sa.Column("east", sa.Float(), nullable=False),
        sa.Column("north", sa.Float(), nullable=False),
        sa.Column("asset_ids", sa.JSON(), nullable=False),
        _time("starts_at", nullable=False),
        _time("ends_at", nullable=False),
        sa.Column("pseudonym_salt", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(200)),
        _time("created_at", nullable=False),
        _time("updated_at", nullable=False),
    )
    op.create_table(
        "comments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("round_id", sa.String(32), sa.ForeignKey("rounds.id", ondelete="CASCADE")),
        sa.Column("thread_id", sa.String(32), nullable=False),
        sa.Column("reply_to", sa.String(32)),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("h", sa.Float()),
        sa.Column("asset_id", sa.String(32)),
        sa.Column("feature_id", sa.String(200)),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(200)),
        sa.Column("author_name", sa.String(200), nullable=False),
        sa.Column("author_kind", sa.String(10), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("moderation_reason", sa.Text()),
        sa.Column("moderated_by", sa.String(200)),
        _time("moderated_at"),
        sa.Column("response", sa.Text()),
        sa.Column("responded_by", sa.String(200)),
        _time("responded_at"),
        _time("created_at", nullable=False),
    )
    op.create_index("ix_comments_round_id", "comments", ["round_id"])
    op.create_index("ix_comments_thread_id", "comments", ["thread_id"])
    op.create_index("comments_place", "comments", ["lat", "lon"])
    op.create_index("comments_author", "comments", ["author"])
    op.create_index("comments_created", "comments", ["created_at", "id"])
    op.create_index("comments_status", "comments", ["status"])
    op.create_table(
        "comment_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column(
            "comment_id",
            sa.String(32),
            sa.ForeignKey("comments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _time("at", nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("text", sa.Text()),
    )
    op.create_index("ix_comment_events_comment_id", "comment_events", ["comment_id"])
    op.create_index("tokens_scope", "tokens", ["scope"])


def downgrade() -> None:
    op.drop_index("tokens_scope", table_name="tokens")
    op.drop_table("comment_events")
    op.drop_table("comments")
    op.drop_table("rounds")
    op.drop_table("inspection_photos")
    op.drop_table("inspection_events")
    op.drop_table("inspections")
    op.drop_table("asset_features")
