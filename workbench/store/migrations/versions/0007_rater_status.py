"""Raters the owner dropped: the append-only `rater_status` table (a rater dropped, or counted again, with why and
when). Their votes and scores stay in the store; the leaderboard and the preference pairs leave out a rater whose
newest row is a drop.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rater_status",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("rater", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("client_key", sa.String(64), unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.CheckConstraint("kind IN ('drop', 'undrop')", name="ck_rater_status_kind"),
    )
    op.create_index("ix_rater_status_rater", "rater_status", ["rater"])


def downgrade() -> None:
    op.drop_table("rater_status")
