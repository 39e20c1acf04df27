"""Raters the owner dropped: the `dropped_raters` table (a rater's name, why, when). Their votes and scores stay in
the store; the leaderboard and the preference pairs leave them out until the row is deleted.

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
        "dropped_raters",
        sa.Column("rater", sa.String(64), primary_key=True),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dropped_raters")
