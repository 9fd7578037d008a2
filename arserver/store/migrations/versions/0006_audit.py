"""The audit log: hash-chained entries and the chain's head and anchor.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.Column("actor_salt", sa.String(32)),
        sa.Column("actor_digest", sa.String(64), nullable=False),
        sa.Column("action", sa.String(200), nullable=False),
        sa.Column("object", sa.String(200)),
        sa.Column("result", sa.String(20), nullable=False),
        sa.Column("origin", sa.String(64)),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("audit_entries_at", "audit_entries", ["at"])
    op.create_index("audit_entries_actor", "audit_entries", ["actor"])
    chain = op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("anchor_seq", sa.BigInteger(), nullable=False),
        sa.Column("anchor_hash", sa.String(64), nullable=False),
        sa.Column("keyed_from", sa.BigInteger()),
        sa.Column("mac", sa.String(64)),
        sa.Column("subject_salt", sa.String(32), nullable=False),
    )
    op.bulk_insert(
        chain,
        [
            {
                "id": 1, "last_seq": 0, "last_hash": GENESIS, "anchor_seq": 1,
                "anchor_hash": GENESIS, "keyed_from": None, "mac": None,
                "subject_salt": secrets.token_hex(16),
            }
        ],
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("audit_chain")
    op.drop_index("audit_entries_actor", table_name="audit_entries")
    op.drop_index("audit_entries_at", table_name="audit_entries")
    op.drop_table("audit_entries")
