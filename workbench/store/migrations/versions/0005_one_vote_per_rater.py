"""One vote per rater and pair, and one Likert score per rater and generation, enforced by the database.

A pair's two generations are stored in id order (generation_a_id < generation_b_id, the winner and the side
shown on the left swapped with them), so a pair has one spelling and a unique index can hold it. Repeated
ballots already in the store (the same rater judging the same pair, or scoring the same generation, again)
are dropped except the first, which is the one that counted as the rater's vote.

Revision ID: 0005
Revises: 0003
"""

from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SET reads the row as it was (SQL standard, SQLite and PostgreSQL alike), so these swap.
    op.execute(
        "UPDATE votes SET generation_a_id = generation_b_id, generation_b_id = generation_a_id, "
        "winner = CASE winner WHEN 'a' THEN 'b' WHEN 'b' THEN 'a' ELSE winner END, "
        "shown_left = CASE shown_left WHEN 'a' THEN 'b' ELSE 'a' END "
        "WHERE generation_a_id > generation_b_id"
    )
    op.execute(
        "DELETE FROM votes WHERE id NOT IN "
        "(SELECT first FROM (SELECT MIN(id) AS first FROM votes GROUP BY rater, generation_a_id, generation_b_id) k)"
    )
    op.execute(
        "DELETE FROM likert WHERE id NOT IN "
        "(SELECT first FROM (SELECT MIN(id) AS first FROM likert GROUP BY rater, generation_id) k)"
    )
    op.create_index("ux_votes_rater_pair", "votes", ["rater", "generation_a_id", "generation_b_id"], unique=True)
    op.create_index("ux_likert_rater_generation", "likert", ["rater", "generation_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_likert_rater_generation", "likert")
    op.drop_index("ux_votes_rater_pair", "votes")
