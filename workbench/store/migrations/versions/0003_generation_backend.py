"""The backend that made each generation ("transformers", "llamacpp"), so a rating is tied to its producer.

Existing rows keep NULL: their backend is unknown.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("generations", sa.Column("backend", sa.String(32)))


def downgrade() -> None:
    # Batch mode: older SQLite cannot drop a column in place, so the table is copied without it.
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("backend")
