"""The store's tables as SQLAlchemy 2 declarative classes (the schema the migrations in migrations/ create).

Times are UTC epoch seconds (`created_at`, a float): the same on SQLite and PostgreSQL, and what FastChat's
`tstamp` is. Free-form extras live in JSON columns called `meta` in Python and `metadata` in the database.
A change here needs a new revision in migrations/versions/; `tests/store/test_store.py` checks they agree.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

WINNERS = ("a", "b", "tie", "bothbad")
SIDES = ("a", "b")


def now() -> float:
    """Current UTC time as epoch seconds."""
    return time.time()


class Base(DeclarativeBase):
    """Declarative base of every store table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Checkpoint(Base):
    """A model that produced generations: a base model or one adapter checkpoint. Its name is the model's
    name on the leaderboard."""

    __tablename__ = "checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    base_model: Mapped[str | None] = mapped_column(String(300))
    step: Mapped[int | None] = mapped_column(Integer)
    path: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    created_at: Mapped[float] = mapped_column(Float, default=now)


class PromptSet(Base):
    """A named list of prompts to run over several checkpoints."""

    __tablename__ = "prompt_sets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float, default=now)


class Prompt(Base):
    """One prompt of a prompt set, in order; `messages` holds a whole conversation when there is one."""

    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("prompt_set_id", "position", name="uq_prompts_set_position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prompt_set_id: Mapped[int] = mapped_column(ForeignKey("prompt_sets.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    messages: Mapped[list[Any] | None] = mapped_column(JSON)
    system_prompt: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)


class Generation(Base):
    """One model output for one prompt under exact generation settings.

    `settings` is the request as given (seed None when none was asked for) and `settings_hash` its
    fingerprint, which `find_generation` matches; the `seed` column is the seed actually used. `backend` is
    what generated it ("transformers", "llamacpp"; NULL when unknown, as for rows older than revision 0003).
    `origin` says where a visitor's own text went in: "battle" (a prompt typed in the Arena) or "chat" (a chat
    reply kept for its feedback); NULL for everything else (prompt sets, the Compare page, suites). Outputs of a
    visitor's typed prompts are never served to other raters (`next_pair_for`, `next_likert_for` skip them).
    """

    __tablename__ = "generations"
    __table_args__ = (Index("ix_generations_request", "prompt_hash", "checkpoint_id", "settings_hash"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoints.id", ondelete="CASCADE"), index=True)
    prompt_id: Mapped[int | None] = mapped_column(ForeignKey("prompts.id", ondelete="SET NULL"), index=True)
    prompt: Mapped[str] = mapped_column(Text)
    messages: Mapped[list[Any]] = mapped_column(JSON)
    system_prompt: Mapped[str | None] = mapped_column(Text)
    prompt_hash: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    settings_hash: Mapped[str] = mapped_column(String(64))
    temperature: Mapped[float | None] = mapped_column(Float)
    top_p: Mapped[float | None] = mapped_column(Float)
    top_k: Mapped[int | None] = mapped_column(Integer)
    max_new_tokens: Mapped[int | None] = mapped_column(Integer)
    repetition_penalty: Mapped[float | None] = mapped_column(Float)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    output: Mapped[str] = mapped_column(Text)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    new_tokens: Mapped[int | None] = mapped_column(Integer)
    ttft_s: Mapped[float | None] = mapped_column(Float)
    tokens_per_s: Mapped[float | None] = mapped_column(Float)
    total_s: Mapped[float | None] = mapped_column(Float)
    finish_reason: Mapped[str | None] = mapped_column(String(16))
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    created_at: Mapped[float] = mapped_column(Float, default=now)
    backend: Mapped[str | None] = mapped_column(String(32))
    origin: Mapped[str | None] = mapped_column(String(16))


class Vote(Base):
    """A blind pairwise judgement between two stored generations of the same prompt.

    `winner` is "a", "b", "tie" or "bothbad" (about generation a and b); `shown_left` says which of the two
    the rater saw on the left. `client_key` makes a repeated submission (double click, reload) a no-op.
    """

    __tablename__ = "votes"
    __table_args__ = (
        CheckConstraint("winner IN ('a', 'b', 'tie', 'bothbad')", name="ck_votes_winner"),
        CheckConstraint("shown_left IN ('a', 'b')", name="ck_votes_shown_left"),
        CheckConstraint("generation_a_id <> generation_b_id", name="ck_votes_two_generations"),
        Index("ix_votes_pair", "generation_a_id", "generation_b_id"),
        # One ballot per rater and pair; a pair is stored in id order (see `add_vote`), so it has one spelling.
        Index("ux_votes_rater_pair", "rater", "generation_a_id", "generation_b_id", unique=True),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_a_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    generation_b_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    shown_left: Mapped[str] = mapped_column(String(1))
    winner: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(Text)
    rater: Mapped[str] = mapped_column(String(64), index=True)
    session: Mapped[str | None] = mapped_column(String(64))
    client_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float, default=now)


class Likert(Base):
    """A 1-to-5 score of one stored generation, with an optional comment."""

    __tablename__ = "likert"
    __table_args__ = (
        CheckConstraint("score BETWEEN 1 AND 5", name="ck_likert_score"),
        Index("ux_likert_rater_generation", "rater", "generation_id", unique=True),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    rater: Mapped[str] = mapped_column(String(64), index=True)
    session: Mapped[str | None] = mapped_column(String(64))
    client_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float, default=now)


RATER_STATUS_KINDS = ("drop", "undrop")


class RaterStatus(Base):
    """The owner dropping a rater from the leaderboard and the preference pairs ("drop"), or counting them again
    ("undrop"). Their votes and scores stay in the store either way; a rater's newest row says which holds.

    Rows are only ever added, like `Feedback`, so the table (and the files synced from it) is append-only and a
    restored store ends in the same state. `client_key` makes a repeat (an import read twice) a no-op.
    """

    __tablename__ = "rater_status"
    __table_args__ = (CheckConstraint("kind IN ('drop', 'undrop')", name="ck_rater_status_kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    rater: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    client_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float, default=now)


FEEDBACK_KINDS = ("like", "dislike", "cleared", "preferred")


class Feedback(Base):
    """A chat visitor's feedback on a reply: a like, a dislike, a reaction taken back ("cleared"), or a preference
    ("preferred": the visitor regenerated `other_generation` and kept `generation`).

    Rows are only ever added: a visitor's current reaction to a reply is their newest like/dislike/cleared row for
    it, so the table (and the files synced from it) is append-only. `client_key` makes a repeat a no-op.
    """

    __tablename__ = "feedback"
    __table_args__ = (
        CheckConstraint("kind IN ('like', 'dislike', 'cleared', 'preferred')", name="ck_feedback_kind"),
        CheckConstraint(
            "(kind = 'preferred') = (other_generation_id IS NOT NULL)", name="ck_feedback_preferred_has_other"
        ),
        Index("ix_feedback_rater_generation", "rater", "generation_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    other_generation_id: Mapped[int | None] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    rater: Mapped[str] = mapped_column(String(64))
    session: Mapped[str | None] = mapped_column(String(64))
    client_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float, default=now)


class Correction(Base):
    """A chat reply as a person corrected it: `generation` is the reply the model made (stored, with its
    conversation), `text` what the person wrote in its place. Rows are only ever added: a rater's current
    correction of a reply is their newest row for it. `client_key` makes a repeat a no-op."""

    __tablename__ = "corrections"
    __table_args__ = (Index("ix_corrections_rater_generation", "rater", "generation_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    rater: Mapped[str] = mapped_column(String(64))
    session: Mapped[str | None] = mapped_column(String(64))
    client_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float, default=now)


class EvalResult(Base):
    """One metric of one evaluation suite on one checkpoint, with everything needed to reproduce it."""

    __tablename__ = "eval_results"
    __table_args__ = (Index("ix_eval_results_suite_checkpoint", "suite", "checkpoint_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    suite: Mapped[str] = mapped_column(String(200))
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoints.id", ondelete="CASCADE"), index=True)
    step: Mapped[int | None] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    signature: Mapped[str | None] = mapped_column(Text)
    num_examples: Mapped[int | None] = mapped_column(Integer)
    num_tokens: Mapped[int | None] = mapped_column(BigInteger)
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    model_hash: Mapped[str | None] = mapped_column(String(128))
    dataset_hash: Mapped[str | None] = mapped_column(String(128))
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    created_at: Mapped[float] = mapped_column(Float, default=now)


class EvalExample(Base):
    """One example behind an evaluation result: what went in, what came out, and its own score."""

    __tablename__ = "eval_examples"
    __table_args__ = (UniqueConstraint("result_id", "example_index", name="uq_eval_examples_result_index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("eval_results.id", ondelete="CASCADE"), index=True)
    example_index: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str | None] = mapped_column(Text)
    hypothesis: Mapped[str | None] = mapped_column(Text)
    references: Mapped[list[Any] | None] = mapped_column(JSON)
    score: Mapped[float | None] = mapped_column(Float)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)


class TrainingLog(Base):
    """One logged step of a training run; values logged separately for the same step are merged."""

    __tablename__ = "training_logs"
    __table_args__ = (UniqueConstraint("run", "step", name="uq_training_logs_run_step"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run: Mapped[str] = mapped_column(String(200), index=True)
    step: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[float | None] = mapped_column(Float)
    train_loss: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    tokens_per_s: Mapped[float | None] = mapped_column(Float)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    created_at: Mapped[float] = mapped_column(Float, default=now)
