"""Ratings read back as pandas DataFrames: votes, Likert scores, and battles in FastChat's clean-battle form.

Each row carries the checkpoint names, the generation settings and the backends ("transformers", "llamacpp"; None
when unknown) behind the rating, so a UI filters by rater, checkpoint, settings or backend on the DataFrame.
`battles()` is what `workbench.ratings.scoring` ranks: `model_a` is the output shown on the left, as in FastChat,
where a "leftvote" is a win for model_a; the columns beyond FastChat's (settings, backends) follow the same sides.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import aliased

from workbench.store.schema import Checkpoint, Generation, Likert, Vote

VOTE_COLUMNS = [
    "id",
    "generation_a_id",
    "generation_b_id",
    "generation_a_uid",
    "generation_b_uid",
    "model_a",
    "model_b",
    "shown_left",
    "winner",
    "reason",
    "rater",
    "session",
    "key",
    "tstamp",
    "prompt",
    "prompt_hash",
    "messages",
    "output_a",
    "output_b",
    "settings_a",
    "settings_b",
    "same_settings",
    "messages_b",
    "source",
    "backend_a",
    "backend_b",
]
LIKERT_COLUMNS = [
    "id",
    "generation_id",
    "generation_uid",
    "model",
    "score",
    "comment",
    "rater",
    "session",
    "key",
    "tstamp",
    "prompt",
    "prompt_hash",
    "messages",
    "output",
    "settings",
    "backend",
]
BATTLE_COLUMNS = [
    "question_id",
    "model_a",
    "model_b",
    "winner",
    "judge",
    "conversation_a",
    "conversation_b",
    "turn",
    "anony",
    "tstamp",
    "vote_id",
    "settings_a",
    "settings_b",
    "reason",
    "backend_a",
    "backend_b",
]
FASTCHAT_WINNER = {"tie": "tie", "bothbad": "tie (bothbad)"}


def _vote_row(v: Vote, ga: Generation, name_a: str, gb: Generation, name_b: str) -> dict[str, Any]:
    return {**vote_like_row(v, ga, name_a, gb, name_b), "source": "arena"}


def vote_like_row(v: Any, ga: Generation, name_a: str, gb: Generation, name_b: str) -> dict[str, Any]:
    """One pairwise judgement as a flat dict (VOTE_COLUMNS): a vote, or a regenerate pair of the chat (`v` a
    Feedback row: a is the reply kept, so it won, and nothing was shown left or right)."""
    vote = isinstance(v, Vote)
    return {
        "id": v.id,
        "generation_a_id": ga.id,
        "generation_b_id": gb.id,
        "generation_a_uid": ga.uid,
        "generation_b_uid": gb.uid,
        "model_a": name_a,
        "model_b": name_b,
        "shown_left": v.shown_left if vote else "a",
        "winner": v.winner if vote else "a",
        "reason": v.reason if vote else None,
        "rater": v.rater,
        "session": v.session,
        "key": v.client_key,
        "tstamp": v.created_at,
        "prompt": ga.prompt,
        "prompt_hash": ga.prompt_hash,
        "messages": ga.messages,
        "output_a": ga.output,
        "output_b": gb.output,
        "settings_a": ga.settings,
        "settings_b": gb.settings,
        "same_settings": ga.settings_hash == gb.settings_hash,
        "backend_a": ga.backend,
        "backend_b": gb.backend,
        # The two sides of a multi-turn Arena battle each went on from their own answers: b's own conversation.
        "messages_b": gb.messages,
        "source": "arena" if vote else "chat",
        # Where each reply came from (training's origin filter); not a column of the vote frame or its export.
        "origin_a": ga.origin,
        "origin_b": gb.origin,
    }


def battle_from_vote(row: dict[str, Any]) -> dict[str, Any]:
    """A vote row (see `votes()`) in FastChat's clean-battle form, the left output as model_a."""
    left, right = ("a", "b") if row["shown_left"] == "a" else ("b", "a")
    winner = FASTCHAT_WINNER.get(row["winner"]) or ("model_a" if row["winner"] == left else "model_b")
    messages = {"a": row["messages"], "b": row.get("messages_b") or row["messages"]}
    conversations = {
        side: [
            *[m for m in messages[side] if m["role"] != "system"],
            {"role": "assistant", "content": row[f"output_{side}"]},
        ]
        for side in ("a", "b")
    }
    return {
        "question_id": row["prompt_hash"][:32],
        "model_a": row[f"model_{left}"],
        "model_b": row[f"model_{right}"],
        "winner": winner,
        "judge": row["rater"],
        "conversation_a": conversations[left],
        "conversation_b": conversations[right],
        "turn": sum(1 for m in row["messages"] if m["role"] == "user"),
        "anony": True,
        "tstamp": row["tstamp"],
        "vote_id": row["id"],
        "settings_a": row[f"settings_{left}"],
        "settings_b": row[f"settings_{right}"],
        "reason": row["reason"],
        "backend_a": row[f"backend_{left}"],
        "backend_b": row[f"backend_{right}"],
    }


class FramesMixin:
    """votes(), likert(), battles() as DataFrames."""

    def _vote_rows(self, rater: str | None = None) -> list[dict[str, Any]]:
        ga, gb = aliased(Generation), aliased(Generation)
        ca, cb = aliased(Checkpoint), aliased(Checkpoint)
        query = (
            select(Vote, ga, ca.name, gb, cb.name)
            .join(ga, ga.id == Vote.generation_a_id)
            .join(gb, gb.id == Vote.generation_b_id)
            .join(ca, ca.id == ga.checkpoint_id)
            .join(cb, cb.id == gb.checkpoint_id)
            .order_by(Vote.created_at, Vote.id)
        )
        if rater is not None:
            query = query.where(Vote.rater == rater)
        with self._read() as s:
            return [_vote_row(*r) for r in s.execute(query)]

    def votes(self, *, rater: str | None = None):
        """Every pairwise vote, oldest first, as a DataFrame (columns: VOTE_COLUMNS).

        `winner` is "a", "b", "tie" or "bothbad" about generations a and b; `model_a`/`model_b` are their
        checkpoints; `shown_left` says which was on the left; settings_a/settings_b are dicts;
        backend_a/backend_b are the backends that made them (None or NaN when unknown).
        """
        import pandas as pd

        return pd.DataFrame(self._vote_rows(rater), columns=VOTE_COLUMNS)

    def battles(self, *, rater: str | None = None):
        """Every vote in FastChat's clean-battle form, oldest first (columns: BATTLE_COLUMNS).

        winner is model_a, model_b, tie or "tie (bothbad)"; model_a is the output shown on the left; judge is
        the rater; conversation_a/b are the prompt plus each answer, as OpenAI-style messages. After FastChat's
        columns: vote_id, settings_a/b, reason and backend_a/b (None or NaN when unknown), on model_a/b's sides.
        """
        import pandas as pd

        return pd.DataFrame([battle_from_vote(r) for r in self._vote_rows(rater)], columns=BATTLE_COLUMNS)

    def likert(self, *, rater: str | None = None):
        """Every Likert score, oldest first, as a DataFrame (columns: LIKERT_COLUMNS); `model` is the checkpoint,
        `backend` the backend that made the output (None or NaN when unknown)."""
        import pandas as pd

        return pd.DataFrame(self._likert_rows(rater), columns=LIKERT_COLUMNS)

    def _likert_rows(self, rater: str | None = None) -> list[dict[str, Any]]:
        query = (
            select(Likert, Generation, Checkpoint.name)
            .join(Generation, Generation.id == Likert.generation_id)
            .join(Checkpoint, Checkpoint.id == Generation.checkpoint_id)
            .order_by(Likert.created_at, Likert.id)
        )
        if rater is not None:
            query = query.where(Likert.rater == rater)
        with self._read() as s:
            return [
                {
                    "id": lk.id,
                    "generation_id": g.id,
                    "generation_uid": g.uid,
                    "model": name,
                    "score": lk.score,
                    "comment": lk.comment,
                    "rater": lk.rater,
                    "session": lk.session,
                    "key": lk.client_key,
                    "tstamp": lk.created_at,
                    "prompt": g.prompt,
                    "prompt_hash": g.prompt_hash,
                    "messages": g.messages,
                    "output": g.output,
                    "settings": g.settings,
                    "backend": g.backend,
                }
                for lk, g, name in s.execute(query)
            ]
