"""Raters the owner dropped: their votes and scores stay in the store, and the leaderboard and the preference pairs
leave them out until the owner counts them again. Both are admin actions (the store's access Policy).

    store.drop_rater("anon-1f2e3d4c5b6a7988", reason="votes against everyone", token=token, who=caller)
    store.dropped_raters()                     # {"anon-1f2e3d4c5b6a7988": "votes against everyone"}
    store.undrop_rater("anon-1f2e3d4c5b6a7988", token=token, who=caller)
    store.rater_status_rows()                  # the `rater_status` export: every drop and undrop, oldest first

Dropping is not deleting (`delete_rater` deletes): the ballots still hold the rater's one vote per pair, exports
still carry them, and the owner can look at what they did and change their mind. Each drop and undrop is a row
added to `rater_status` (never changed or deleted), the newest per rater deciding, so the rows sync to a dataset
and back (`workbench.store.sync`) like the chat's feedback and a restored store drops the same raters. Torch-free.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from workbench.access import SHELL, Caller
from workbench.errors import WorkbenchError
from workbench.store.records import check_key, check_rater, is_judge, judge_rater
from workbench.store.schema import RATER_STATUS_KINDS, Likert, RaterStatus, Vote

REASON_MAX = 500
RATER_STATUS_COLUMNS = ["id", "kind", "rater", "reason", "key", "tstamp"]


def _name(rater: str) -> str:
    return judge_rater(rater) if is_judge(rater) else check_rater(rater)


def _reason(reason: Any) -> str | None:
    return str(reason or "").strip()[:REASON_MAX] or None


class RaterStatusMixin:
    """drop_rater, undrop_rater, dropped_raters, rater_status_rows."""

    def _status(self, s, rater: str | None = None) -> dict[str, RaterStatus]:
        """Each rater's newest status row (or only `rater`'s)."""
        query = select(RaterStatus).order_by(RaterStatus.created_at, RaterStatus.id)
        if rater is not None:
            query = query.where(RaterStatus.rater == rater)
        return {row.rater: row for row in s.scalars(query)}

    def _set_status(self, kind: str, rater: str, reason: str | None, token: str | None, who: Caller) -> bool:
        self.check_admin(token, who)
        rater = _name(rater)
        with self._write() as s:
            if kind == "drop":
                voted = s.scalar(select(func.count()).where(Vote.rater == rater))
                if not voted and not s.scalar(select(func.count()).where(Likert.rater == rater)):
                    raise WorkbenchError(f"There is no rater named {rater!r} in the store.")
            now = self._status(s, rater).get(rater)
            if (now.kind if now is not None else "undrop") == kind:
                return False
            s.add(RaterStatus(kind=kind, rater=rater, reason=_reason(reason), client_key=uuid.uuid4().hex))
        return True

    def drop_rater(
        self, rater: str, *, reason: str | None = None, token: str | None = None, who: Caller = SHELL
    ) -> bool:
        """Leave a rater's votes and scores out of the leaderboard and the preference pairs (admin); they stay in the
        store. Returns False when the rater was dropped already.

        Raises:
            WorkbenchError: Not allowed, a malformed name, or a rater with no vote or score in the store.
        """
        return self._set_status("drop", rater, reason, token, who)

    def undrop_rater(self, rater: str, *, token: str | None = None, who: Caller = SHELL) -> bool:
        """Count a dropped rater's votes and scores again (admin). Returns False when they were not dropped."""
        return self._set_status("undrop", rater, None, token, who)

    def dropped_raters(self) -> dict[str, str | None]:
        """Every rater dropped now and the owner's reason (None when none was given), sorted by name."""
        with self._read() as s:
            rows = self._status(s).values()
        return {row.rater: row.reason for row in sorted(rows, key=lambda r: r.rater) if row.kind == "drop"}

    def rater_status_rows(self) -> list[dict[str, Any]]:
        """Every drop and undrop, oldest first (columns RATER_STATUS_COLUMNS): the `rater_status` export."""
        with self._read() as s:
            rows = s.scalars(select(RaterStatus).order_by(RaterStatus.created_at, RaterStatus.id)).all()
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "rater": r.rater,
                "reason": r.reason,
                "key": r.client_key,
                "tstamp": r.created_at,
            }
            for r in rows
        ]

    def _import_rater_status(self, record: Mapping[str, Any], key: str) -> int:
        """Add one exported drop or undrop row (the import's admin check is the caller's); 0 when its key is here."""
        kind = record.get("kind")
        if kind not in RATER_STATUS_KINDS:
            raise WorkbenchError(f"A rater status must be one of {', '.join(RATER_STATUS_KINDS)}, not {kind!r}.")
        row = RaterStatus(kind=kind, rater=_name(record["rater"]), reason=_reason(record.get("reason")))
        row.client_key = check_key(key)
        if record.get("tstamp") is not None:
            row.created_at = float(record["tstamp"])
        try:
            with self._write() as s:
                if s.scalar(select(RaterStatus.id).where(RaterStatus.client_key == row.client_key)) is not None:
                    return 0
                s.add(row)
        except IntegrityError:  # the same row imported at the same moment by another process
            return 0
        return 1
