"""Raters the owner dropped: their votes and scores stay in the store, and the leaderboard and the preference pairs
leave them out until the owner takes them back. Both are admin actions (the store's access Policy).

    store.drop_rater("anon-1f2e3d4c5b6a7988", reason="votes against everyone", token=token, who=caller)
    store.dropped_raters()                     # {"anon-1f2e3d4c5b6a7988": "votes against everyone"}
    store.undrop_rater("anon-1f2e3d4c5b6a7988", token=token, who=caller)

Dropping is not deleting (`delete_rater` deletes): the ballots still hold the rater's one vote per pair, exports
still carry them, and the owner can look at what they did and change their mind. Torch-free.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from workbench.access import SHELL, Caller
from workbench.errors import WorkbenchError
from workbench.store.records import check_rater, is_judge, judge_rater
from workbench.store.schema import DroppedRater, Likert, Vote

REASON_MAX = 500


def _name(rater: str) -> str:
    return judge_rater(rater) if is_judge(rater) else check_rater(rater)


class RaterStatusMixin:
    """drop_rater, undrop_rater, dropped_raters."""

    def drop_rater(
        self, rater: str, *, reason: str | None = None, token: str | None = None, who: Caller = SHELL
    ) -> bool:
        """Leave a rater's votes and scores out of the leaderboard and the preference pairs (admin); they stay in the
        store. Returns False when the rater was dropped already.

        Raises:
            WorkbenchError: Not allowed, a malformed name, or a rater with no vote or score in the store.
        """
        self.check_admin(token, who)
        rater = _name(rater)
        reason = (reason or "").strip()[:REASON_MAX] or None
        with self._write() as s:
            voted = select(func.count()).where(Vote.rater == rater)
            if not s.scalar(voted) and not s.scalar(select(func.count()).where(Likert.rater == rater)):
                raise WorkbenchError(f"There is no rater named {rater!r} in the store.")
            if s.get(DroppedRater, rater) is not None:
                return False
            s.add(DroppedRater(rater=rater, reason=reason))
            try:
                s.flush()
            except IntegrityError:  # dropped at the same moment by another request
                return False
        return True

    def undrop_rater(self, rater: str, *, token: str | None = None, who: Caller = SHELL) -> bool:
        """Count a dropped rater's votes and scores again (admin). Returns False when they were not dropped."""
        self.check_admin(token, who)
        rater = _name(rater)
        with self._write() as s:
            return bool(s.execute(delete(DroppedRater).where(DroppedRater.rater == rater)).rowcount)

    def dropped_raters(self) -> dict[str, str | None]:
        """Every dropped rater and the owner's reason (None when none was given), sorted by name."""
        with self._read() as s:
            return dict(s.execute(select(DroppedRater.rater, DroppedRater.reason).order_by(DroppedRater.rater)).all())
