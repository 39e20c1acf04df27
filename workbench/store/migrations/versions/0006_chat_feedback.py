"""Chat feedback and where a visitor's own text went in: the `feedback` table (likes, dislikes, and a regenerated
reply kept over the one it replaced) and `generations.origin` ("battle", "chat" or NULL).

Existing generations keep NULL: they came from prompt sets, the Compare page or suites, never a visitor's typing.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("generations", sa.Column("origin", sa.String(16)))
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("generation_id", sa.Integer, sa.ForeignKey("generations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("other_generation_id", sa.Integer, sa.ForeignKey("generations.id", ondelete="CASCADE")),
        sa.Column("rater", sa.String(64), nullable=False),
        sa.Column("session", sa.String(64)),
        sa.Column("client_key", sa.String(64), unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.CheckConstraint("kind IN ('like', 'dislike', 'cleared', 'preferred')", name="ck_feedback_kind"),
        sa.CheckConstraint(
            "(kind = 'preferred') = (other_generation_id IS NOT NULL)", name="ck_feedback_preferred_has_other"
        ),
    )
    op.create_index("ix_feedback_generation_id", "feedback", ["generation_id"])
    op.create_index("ix_feedback_rater_generation", "feedback", ["rater", "generation_id"])


def downgrade() -> None:
    op.drop_table("feedback")
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("origin")
