"""Corrections in the store: a chat reply the model made, and the text a person wrote in its place.

A correction points at the stored reply (the chat stores it, with its conversation, the first time someone edits
it) and holds the person's text. Rows are only ever added: a rater's current correction of a reply is their newest
row for it, so the table syncs as append-only files. Each current correction is two training examples:

    sft_example(row)        {"messages": [...the conversation, {"role": "assistant", "content": corrected}]}
    correction_pair(row)    {"prompt": [...], "chosen": [corrected], "rejected": [original], "source": "edit"}

    store.add_correction(gid, "The capital of France is Paris.", rater=None, session=voter)
    store.correction_rows()          # each rater's current correction of each reply, oldest first
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from workbench.errors import WorkbenchError
from workbench.store.records import check_key
from workbench.store.schema import Checkpoint, Correction, Generation

CORRECTION_COLUMNS = [
    "id",
    "generation_uid",
    "model",
    "origin",
    "messages",
    "original",
    "corrected",
    "rater",
    "session",
    "key",
    "tstamp",
]


def sft_example(row: dict[str, Any]) -> dict[str, Any]:
    """A correction as a supervised example in chat form: its conversation answered with the corrected text."""
    return {"messages": [*row["messages"], {"role": "assistant", "content": row["corrected"]}]}


def correction_pair(row: dict[str, Any]) -> dict[str, Any]:
    """A correction as a TRL preference pair in conversational form: the corrected text preferred over the
    model's original reply to the same conversation."""
    return {
        "prompt": list(row["messages"]),
        "chosen": [{"role": "assistant", "content": row["corrected"]}],
        "rejected": [{"role": "assistant", "content": row["original"]}],
        "source": "edit",
    }


def _repeated_correction(s, row: Correction) -> int | None:
    return s.scalar(select(Correction.id).where(Correction.client_key == row.client_key))


class CorrectionsMixin:
    """add_correction, correction_rows."""

    def add_correction(
        self,
        generation: int,
        text: str,
        *,
        rater: str | None,
        session: str | None = None,
        key: str | None = None,
        created_at: float | None = None,
    ) -> int:
        """Record `text` as a correction of the stored reply `generation` and return its id (a repeated key
        records nothing and returns the first one's id).

        Args:
            generation: The reply the model made (a stored generation).
            text: What the person wrote in its place: not empty, and not the reply itself.
            rater: The rater's name; None to stay anonymous under `session`.
            session: The visitor's id (`workbench.access.voter_id`).
            key: Idempotency key; a new one is made when not given.
            created_at: Epoch seconds (imports keep the original time); now when not given.
        """
        from workbench.store.feedback import _check_id
        from workbench.store.votes import _rater

        if not isinstance(text, str) or not text.strip():
            raise WorkbenchError("A correction needs the corrected text; it is empty.")
        rater, session = _rater(rater, session)
        row = Correction(
            generation_id=_check_id(generation),
            text=text,
            rater=rater,
            session=session,
            client_key=check_key(key) or uuid.uuid4().hex,
        )
        if created_at is not None:
            row.created_at = float(created_at)

        def check(s) -> None:
            original = s.scalar(select(Generation.output).where(Generation.id == generation))
            if original is None:
                raise WorkbenchError(f"There is no generation with id {generation} in the store; nothing was kept.")
            if original.strip() == text.strip():
                raise WorkbenchError("The edited reply is the same as the model's: there is nothing to correct.")

        return self._add_once(row, _repeated_correction, check)

    def correction_rows(self, *, current: bool = True) -> list[dict[str, Any]]:
        """Corrections, oldest first (columns CORRECTION_COLUMNS): with `current`, each rater's newest correction
        of each reply only (what trains and exports); otherwise every row."""
        query = (
            select(Correction, Generation, Checkpoint.name)
            .join(Generation, Generation.id == Correction.generation_id)
            .join(Checkpoint, Checkpoint.id == Generation.checkpoint_id)
            .order_by(Correction.created_at, Correction.id)
        )
        with self._read() as s:
            rows = [
                {
                    "id": c.id,
                    "generation_uid": g.uid,
                    "model": name,
                    "origin": g.origin,
                    "messages": list(g.messages),
                    "original": g.output,
                    "corrected": c.text,
                    "rater": c.rater,
                    "session": c.session,
                    "key": c.client_key,
                    "tstamp": c.created_at,
                    "_generation": g.id,
                }
                for c, g, name in s.execute(query)
            ]
        if current:  # the newest row of each (rater, reply), kept where it stands in time
            newest = {(r["rater"], r["_generation"]): r["id"] for r in rows}
            rows = [r for r in rows if newest[(r["rater"], r["_generation"])] == r["id"]]
        return [{c: r[c] for c in CORRECTION_COLUMNS} for r in rows]
