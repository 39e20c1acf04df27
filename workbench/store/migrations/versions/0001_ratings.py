"""First schema: checkpoints, prompt sets, generations and the human ratings (pairwise votes, Likert).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("base_model", sa.String(300)),
        sa.Column("step", sa.Integer),
        sa.Column("path", sa.Text),
        sa.Column("metadata", sa.JSON),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "prompt_sets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("description", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "prompts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "prompt_set_id", sa.Integer, sa.ForeignKey("prompt_sets.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("messages", sa.JSON),
        sa.Column("system_prompt", sa.Text),
        sa.Column("reference", sa.Text),
        sa.Column("metadata", sa.JSON),
        sa.UniqueConstraint("prompt_set_id", "position", name="uq_prompts_set_position"),
    )
    op.create_table(
        "generations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False, unique=True),
        sa.Column(
            "checkpoint_id", sa.Integer, sa.ForeignKey("checkpoints.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompts.id", ondelete="SET NULL"), index=True),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("messages", sa.JSON, nullable=False),
        sa.Column("system_prompt", sa.Text),
        sa.Column("prompt_hash", sa.String(64), nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("settings_hash", sa.String(64), nullable=False),
        sa.Column("temperature", sa.Float),
        sa.Column("top_p", sa.Float),
        sa.Column("top_k", sa.Integer),
        sa.Column("max_new_tokens", sa.Integer),
        sa.Column("repetition_penalty", sa.Float),
        sa.Column("seed", sa.BigInteger),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("new_tokens", sa.Integer),
        sa.Column("ttft_s", sa.Float),
        sa.Column("tokens_per_s", sa.Float),
        sa.Column("total_s", sa.Float),
        sa.Column("finish_reason", sa.String(16)),
        sa.Column("metadata", sa.JSON),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Index("ix_generations_request", "prompt_hash", "checkpoint_id", "settings_hash"),
    )
    op.create_table(
        "votes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation_a_id", sa.Integer, sa.ForeignKey("generations.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "generation_b_id",
            sa.Integer,
            sa.ForeignKey("generations.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("shown_left", sa.String(1), nullable=False),
        sa.Column("winner", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("rater", sa.String(64), nullable=False, index=True),
        sa.Column("session", sa.String(64)),
        sa.Column("client_key", sa.String(64), unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.CheckConstraint("winner IN ('a', 'b', 'tie', 'bothbad')", name="ck_votes_winner"),
        sa.CheckConstraint("shown_left IN ('a', 'b')", name="ck_votes_shown_left"),
        sa.CheckConstraint("generation_a_id <> generation_b_id", name="ck_votes_two_generations"),
        sa.Index("ix_votes_pair", "generation_a_id", "generation_b_id"),
    )
    op.create_table(
        "likert",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "generation_id", sa.Integer, sa.ForeignKey("generations.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("rater", sa.String(64), nullable=False, index=True),
        sa.Column("session", sa.String(64)),
        sa.Column("client_key", sa.String(64), unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name="ck_likert_score"),
    )


def downgrade() -> None:
    for table in ("likert", "votes", "generations", "prompts", "prompt_sets", "checkpoints"):
        op.drop_table(table)
