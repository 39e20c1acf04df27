"""The store: one database for checkpoints, prompt sets, generations, human ratings, evaluations and training logs.

SQLite by default (`<home>/var/workbench.db`, created on first use, WAL mode) and PostgreSQL when
`WORKBENCH_DB_URL=postgresql+psycopg://...`: the same code. The schema is versioned with alembic and an
older database is upgraded in place when opened. Torch-free, and light to import (pandas loads on first use).

    from workbench.config import Settings
    from workbench.store import Store

    store = Store.open(Settings.from_env())          # or Store("sqlite:///x.db")
    gid = store.add_generation("ckpt-100", "Hello?", "Hi!", settings, stats=reply_stats)
    item = store.next_pair_for("alice")               # blind pair, left/right drawn at random
    store.add_vote(item.a.id, item.b.id, item.winner_for("left"), rater="alice",
                   shown_left=item.shown_left, key=item.key)
    store.battles()                                   # FastChat clean-battle DataFrame for workbench.ratings.scoring
    store.add_feedback("like", gid, rater=None, session=voter)   # the chat's likes and regenerate pairs
    store.drop_rater("anon-1f2e3d4c5b6a7988")         # their votes kept, left out of the leaderboard (admin)
    store.add_correction(gid, "Paris.", rater=None, session=voter)  # a chat reply a person edited
"""

from __future__ import annotations

from workbench.store.base import StoreBase
from workbench.store.corrections import CorrectionsMixin
from workbench.store.export import ExportMixin
from workbench.store.feedback import FeedbackMixin
from workbench.store.frames import FramesMixin
from workbench.store.generations import GenerationsMixin
from workbench.store.judging import JudgePair, JudgeQueue, JudgingMixin
from workbench.store.raters import RaterStatusMixin
from workbench.store.records import (
    JUDGE_PREFIX,
    RATER_KINDS,
    GenerationRecord,
    LikertItem,
    PairItem,
    Progress,
    anonymous_rater,
    check_rater,
    check_rater_kind,
    is_judge,
    is_visitor,
    judge_rater,
    settings_label,
)
from workbench.store.results import ResultsMixin
from workbench.store.tallies import TalliesMixin
from workbench.store.visitors import VISITOR_PROMPTS, VisitorPromptsMixin
from workbench.store.votes import RatingsMixin

__all__ = [
    "JUDGE_PREFIX",
    "RATER_KINDS",
    "VISITOR_PROMPTS",
    "GenerationRecord",
    "JudgePair",
    "JudgeQueue",
    "LikertItem",
    "PairItem",
    "Progress",
    "Store",
    "anonymous_rater",
    "check_rater",
    "check_rater_kind",
    "is_judge",
    "is_visitor",
    "judge_rater",
    "settings_label",
]


class Store(
    GenerationsMixin,
    RatingsMixin,
    RaterStatusMixin,
    FeedbackMixin,
    CorrectionsMixin,
    VisitorPromptsMixin,
    FramesMixin,
    TalliesMixin,
    ResultsMixin,
    ExportMixin,
    JudgingMixin,
    StoreBase,
):
    """The workbench's database. See the module docstring; each mixin's docstring lists its methods."""
