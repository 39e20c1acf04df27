"""Evaluation results with their per-example outputs, and training logs.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_results",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("suite", sa.String(200), nullable=False),
        sa.Column(
            "checkpoint_id", sa.Integer, sa.ForeignKey("checkpoints.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("step", sa.Integer),
        sa.Column("metric", sa.String(100), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("signature", sa.Text),
        sa.Column("num_examples", sa.Integer),
        sa.Column("num_tokens", sa.BigInteger),
        sa.Column("settings", sa.JSON),
        sa.Column("model_hash", sa.String(128)),
        sa.Column("dataset_hash", sa.String(128)),
        sa.Column("metadata", sa.JSON),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Index("ix_eval_results_suite_checkpoint", "suite", "checkpoint_id"),
    )
    op.create_table(
        "eval_examples",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "result_id", sa.Integer, sa.ForeignKey("eval_results.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("example_index", sa.Integer, nullable=False),
        sa.Column("prompt", sa.Text),
        sa.Column("hypothesis", sa.Text),
        sa.Column("references", sa.JSON),
        sa.Column("score", sa.Float),
        sa.Column("metadata", sa.JSON),
        sa.UniqueConstraint("result_id", "example_index", name="uq_eval_examples_result_index"),
    )
    op.create_table(
        "training_logs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run", sa.String(200), nullable=False, index=True),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("epoch", sa.Float),
        sa.Column("train_loss", sa.Float),
        sa.Column("val_loss", sa.Float),
        sa.Column("learning_rate", sa.Float),
        sa.Column("tokens_per_s", sa.Float),
        sa.Column("metadata", sa.JSON),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("run", "step", name="uq_training_logs_run_step"),
    )


def downgrade() -> None:
    for table in ("training_logs", "eval_examples", "eval_results"):
        op.drop_table(table)
