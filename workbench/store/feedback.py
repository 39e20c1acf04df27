"""Chat feedback in the store: a visitor's like or dislike of a reply, and a regenerated reply kept over the old one.

Every row points at stored generations (the chat stores a reply the first time a visitor gives feedback on it).
Rows are only ever added, so the table syncs as append-only files: a reaction taken back is a "cleared" row, and a
visitor's current reaction to a reply is their newest like/dislike/cleared row for it. A regenerate pair says the
visitor asked for a new reply (`other`, the one replaced) and kept it (`generation`): both answer one conversation.

    store.add_feedback("like", gid, rater=None, session=voter)
    store.add_feedback("preferred", kept_id, other=replaced_id, rater=None, session=voter, key=key)
    store.reactions()            # current likes/dislikes per (rater, reply), with the checkpoint
    store.reaction_rows()        # the same with each reply's conversation and text (KTO's training data)
    store.feedback_rows()        # every row, oldest first (the export's form)
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from workbench.errors import WorkbenchError
from workbench.store.records import check_key
from workbench.store.schema import FEEDBACK_KINDS, Checkpoint, Feedback, Generation

FEEDBACK_COLUMNS = [
    "id",
    "kind",
    "generation_uid",
    "other_generation_uid",
    "model",
    "other_model",
    "rater",
    "session",
    "key",
    "tstamp",
    "prompt",
]


def _check_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorkbenchError(f"A generation id must be a whole number, not {value!r}.")
    return value


class FeedbackMixin:
    """add_feedback, feedback_rows, reactions, reaction_rows, reaction_counts."""

    def add_feedback(
        self,
        kind: str,
        generation: int,
        *,
        rater: str | None,
        other: int | None = None,
        session: str | None = None,
        key: str | None = None,
        created_at: float | None = None,
    ) -> int:
        """Record one piece of chat feedback and return its id (a repeated key, or a repeated regenerate pair by
        the same rater, records nothing and returns the first one's id).

        Args:
            kind: "like", "dislike", "cleared" (a reaction taken back) or "preferred".
            generation: The reply judged (for "preferred": the one the visitor kept).
            rater: The rater's name; None to stay anonymous under `session`.
            other: For "preferred" only: the reply the kept one replaced (same conversation).
            session: The visitor's id (`workbench.access.voter_id`).
            key: Idempotency key; a new one is made when not given.
            created_at: Epoch seconds (imports keep the original time); now when not given.
        """
        from workbench.store.votes import _rater

        if kind not in FEEDBACK_KINDS:
            raise WorkbenchError(f"Feedback must be one of {', '.join(FEEDBACK_KINDS)}, not {kind!r}.")
        if (kind == "preferred") != (other is not None):
            raise WorkbenchError("A preference names the reply kept and the one it replaced; a reaction names one.")
        ids = [_check_id(generation)] + ([_check_id(other)] if other is not None else [])
        if len(set(ids)) != len(ids):
            raise WorkbenchError("A preference needs two different replies.")
        rater, session = _rater(rater, session)
        row = Feedback(
            kind=kind,
            generation_id=generation,
            other_generation_id=other,
            rater=rater,
            session=session,
            client_key=check_key(key) or uuid.uuid4().hex,
        )
        if created_at is not None:
            row.created_at = float(created_at)

        def check(s) -> None:
            found = dict(s.execute(select(Generation.id, Generation.prompt_hash).where(Generation.id.in_(ids))).all())
            missing = [g for g in ids if g not in found]
            if missing:
                raise WorkbenchError(f"There is no generation with id {missing[0]} in the store; nothing was recorded.")
            if len(set(found.values())) > 1:
                raise WorkbenchError("The kept reply and the one it replaced must answer the same conversation.")

        return self._add_once(row, self._repeated_feedback, check)

    @staticmethod
    def _repeated_feedback(s, row: Feedback) -> int | None:
        seen = s.scalar(select(Feedback.id).where(Feedback.client_key == row.client_key))
        if seen is not None or row.kind != "preferred":
            return seen
        same = (
            Feedback.kind == "preferred",
            Feedback.rater == row.rater,
            Feedback.generation_id == row.generation_id,
            Feedback.other_generation_id == row.other_generation_id,
        )
        return s.scalar(select(Feedback.id).where(*same))

    def feedback_rows(self, *, kinds: tuple[str, ...] = FEEDBACK_KINDS) -> list[dict[str, Any]]:
        """Every feedback row of these kinds, oldest first (columns FEEDBACK_COLUMNS; `other_*` is None for a
        reaction). This is the `feedback` export."""
        g, o = aliased(Generation), aliased(Generation)
        cg, co = aliased(Checkpoint), aliased(Checkpoint)
        query = (
            select(Feedback, g.uid, cg.name, g.prompt, o.uid, co.name)
            .join(g, g.id == Feedback.generation_id)
            .join(cg, cg.id == g.checkpoint_id)
            .outerjoin(o, o.id == Feedback.other_generation_id)
            .outerjoin(co, co.id == o.checkpoint_id)
            .where(Feedback.kind.in_(list(kinds)))
            .order_by(Feedback.created_at, Feedback.id)
        )
        with self._read() as s:
            return [
                {
                    "id": f.id,
                    "kind": f.kind,
                    "generation_uid": uid,
                    "other_generation_uid": other_uid,
                    "model": model,
                    "other_model": other_model,
                    "rater": f.rater,
                    "session": f.session,
                    "key": f.client_key,
                    "tstamp": f.created_at,
                    "prompt": prompt,
                }
                for f, uid, model, prompt, other_uid, other_model in s.execute(query)
            ]

    def _preferred_rows(self) -> list[dict[str, Any]]:
        """Regenerate pairs shaped like the vote rows of `_vote_rows` (a = the reply kept, winner "a", source
        "chat"), for preference training and the votes export."""
        ga, gb = aliased(Generation), aliased(Generation)
        ca, cb = aliased(Checkpoint), aliased(Checkpoint)
        query = (
            select(Feedback, ga, ca.name, gb, cb.name)
            .join(ga, ga.id == Feedback.generation_id)
            .join(gb, gb.id == Feedback.other_generation_id)
            .join(ca, ca.id == ga.checkpoint_id)
            .join(cb, cb.id == gb.checkpoint_id)
            .where(Feedback.kind == "preferred")
            .order_by(Feedback.created_at, Feedback.id)
        )
        with self._read() as s:
            rows = s.execute(query).all()
        from workbench.store.frames import vote_like_row

        return [vote_like_row(f, ga, name_a, gb, name_b) for f, ga, name_a, gb, name_b in rows]

    @staticmethod
    def _current_reactions(*columns):
        """A query of `columns` over each rater's current like or dislike of each reply (their newest
        like/dislike/cleared row; "cleared" ones left out), oldest first; Generation and Checkpoint are joined."""
        newest = (
            select(func.max(Feedback.id).label("id"))
            .where(Feedback.kind != "preferred")
            .group_by(Feedback.rater, Feedback.generation_id)
            .subquery()
        )
        return (
            select(*columns)
            .join(newest, newest.c.id == Feedback.id)
            .join(Generation, Generation.id == Feedback.generation_id)
            .join(Checkpoint, Checkpoint.id == Generation.checkpoint_id)
            .where(Feedback.kind != "cleared")
            .order_by(Feedback.id)
        )

    def reactions(self):
        """Each rater's current reaction to each reply they reacted to (their newest like/dislike/cleared row;
        "cleared" ones left out), as a DataFrame: generation_id, model, rater, kind, tstamp."""
        import pandas as pd

        query = self._current_reactions(
            Feedback.generation_id, Checkpoint.name, Feedback.rater, Feedback.kind, Feedback.created_at
        )
        with self._read() as s:
            rows = s.execute(query).all()
        return pd.DataFrame(rows, columns=["generation_id", "model", "rater", "kind", "tstamp"])

    def reaction_rows(self) -> list[dict[str, Any]]:
        """The current reactions of `reactions` with the replies they judge (KTO's training data): dicts of
        generation_id, model, rater, kind ("like"/"dislike"), tstamp, origin, messages and output."""
        query = self._current_reactions(
            Feedback.generation_id,
            Checkpoint.name,
            Feedback.rater,
            Feedback.kind,
            Feedback.created_at,
            Generation.origin,
            Generation.messages,
            Generation.output,
        )
        keys = ("generation_id", "model", "rater", "kind", "tstamp", "origin", "messages", "output")
        with self._read() as s:
            return [dict(zip(keys, row, strict=True)) for row in s.execute(query).all()]

    def reaction_counts(self):
        """Current likes and dislikes per checkpoint (a DataFrame: model, likes, dislikes), most liked first."""
        import pandas as pd

        frame = self.reactions()
        if frame.empty:
            return pd.DataFrame(columns=["model", "likes", "dislikes"])
        counts = pd.crosstab(frame["model"], frame["kind"]).reindex(columns=["like", "dislike"], fill_value=0)
        counts = counts.rename(columns={"like": "likes", "dislike": "dislikes"}).reset_index()
        return counts.sort_values(["likes", "dislikes"], ascending=[False, True], ignore_index=True)
