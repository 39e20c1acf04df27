"""Corrections: a chat reply as a person edited it (the `corrections` table), pointing at the stored reply.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation_id", sa.Integer, sa.ForeignKey("generations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("rater", sa.String(64), nullable=False),
        sa.Column("session", sa.String(64)),
        sa.Column("client_key", sa.String(64), unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_corrections_generation_id", "corrections", ["generation_id"])
    op.create_index("ix_corrections_rater_generation", "corrections", ["rater", "generation_id"])


def downgrade() -> None:
    op.drop_table("corrections")
