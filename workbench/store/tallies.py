"""Pairwise votes counted in the database, for leaderboards at any size: a GROUP BY tally, the votes' high-water
mark to cache on, and the slim ordered rows that online Elo and rater agreement need.

`votes()`/`battles()` build one Python object per vote with its prompt, outputs and settings; at 100,000 votes
that alone takes seconds. These read only what ranking needs, through SQLAlchemy Core (no ORM objects, no JSON
columns), and name settings by their label (`settings_label`), computed once per distinct settings:

    mark = store.ratings_mark()          # changes whenever a vote or score is added or deleted
    store.votes_mark()                   # the highest vote id: cheap, moves when a vote is added
    tally = store.vote_tallies()         # model_a, model_b, winner, judge, settings_a/b, backend_a/b, n
    seq = store.vote_sequence()          # one slim row per vote, oldest first (online Elo, agreement)
    store.vote_reasons([ids])            # the typed reasons of a few votes

Sides are FastChat's, as in `battles()`: model_a is the output shown on the left.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from workbench.store.records import settings_label
from workbench.store.schema import Checkpoint, Generation, Likert, Vote

TALLY_COLUMNS = ["model_a", "model_b", "winner", "judge", "settings_a", "settings_b", "backend_a", "backend_b", "n"]
SEQUENCE_COLUMNS = [
    "vote_id",
    "question_id",
    "model_a",
    "model_b",
    "winner",
    "judge",
    "settings_a",
    "settings_b",
    "backend_a",
    "backend_b",
    "has_reason",
]
_SIDES = ("checkpoint", "settings", "backend")


def _pair_columns():
    ga, gb = aliased(Generation), aliased(Generation)
    columns = [
        ga.checkpoint_id.label("checkpoint_a"),
        gb.checkpoint_id.label("checkpoint_b"),
        ga.settings_hash.label("settings_a"),
        gb.settings_hash.label("settings_b"),
        ga.backend.label("backend_a"),
        gb.backend.label("backend_b"),
        Vote.shown_left,
        Vote.winner,
        Vote.rater.label("judge"),
    ]
    joins = ((ga, ga.id == Vote.generation_a_id), (gb, gb.id == Vote.generation_b_id))
    return columns, joins, ga


_NUMBERS = {"n", "vote_id", "checkpoint_a", "checkpoint_b", "has_reason"}


def _frame(s, query, keys: list[str]):
    """A query's rows as a DataFrame, read with the driver's own cursor (SQLAlchemy's Row objects and pandas'
    row-by-row constructor cost more than the query itself at 100,000 rows). Text stays plain Python strings
    (object columns), so later filters and groupings never convert 100,000 values to and from Arrow."""
    import pandas as pd

    connection = s.connection()
    # The query has no parameters from outside (only column names and constants), so literal binds are safe.
    sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(keys)
    return pd.DataFrame(
        {k: pd.Series(c, dtype=None if k in _NUMBERS else object) for k, c in zip(keys, columns, strict=True)}
    )


def _orient(frame, names: dict[int, str], labels: dict[str, str]):
    """Stored sides (a, b) to shown sides (left = model_a), winners to FastChat's words, ids to names."""
    import numpy as np

    left_is_a = (frame["shown_left"] == "a").to_numpy()
    for side in _SIDES:
        a, b = frame[f"{side}_a"].to_numpy(), frame[f"{side}_b"].to_numpy()
        frame[f"{side}_a"], frame[f"{side}_b"] = np.where(left_is_a, a, b), np.where(left_is_a, b, a)
    frame["model_a"] = frame.pop("checkpoint_a").map(names)
    frame["model_b"] = frame.pop("checkpoint_b").map(names)
    for side in ("settings_a", "settings_b"):
        frame[side] = frame[side].map(labels)
    winner = frame["winner"].to_numpy()
    frame["winner"] = np.select(
        [winner == "tie", winner == "bothbad", winner == frame["shown_left"].to_numpy()],
        ["tie", "tie (bothbad)", "model_a"],
        default="model_b",
    )
    frame = frame.drop(columns="shown_left")
    for column in ("model_a", "model_b", "winner", "settings_a", "settings_b"):  # made here: back to plain strings
        frame[column] = frame[column].astype(object)
    return frame


class TalliesMixin:
    """ratings_mark, votes_mark, vote_tallies, vote_sequence, vote_reasons."""

    def ratings_mark(self) -> tuple[Any, ...]:
        """The ratings' high-water mark: (highest vote id, votes, newest vote time, the same three for Likert scores).

        Any vote or score added or deleted changes it, so a cache keyed on it is never stale. The time is there
        because SQLite may reuse the highest id after that row is deleted.
        """
        votes = select(func.coalesce(func.max(Vote.id), 0), func.count(Vote.id), func.max(Vote.created_at))
        likert = select(func.coalesce(func.max(Likert.id), 0), func.count(Likert.id), func.max(Likert.created_at))
        with self._read() as s:
            return (*s.execute(votes).one(), *s.execute(likert).one())

    def votes_mark(self) -> int:
        """The highest vote id: one index lookup, for a cache that must stay cheap to check on every request (the
        Arena's pair sampler). `ratings_mark` also counts the votes and reads their newest time, which scans the
        table (about 60 ms at 100,000 votes on a busy machine); a deletion moves only that one."""
        with self._read() as s:
            return int(s.execute(select(func.coalesce(func.max(Vote.id), 0))).scalar_one())

    def _names_and_labels(self, s) -> tuple[dict[int, str], dict[str, str], dict[str, dict[str, Any]]]:
        names = dict(s.execute(select(Checkpoint.id, Checkpoint.name)).all())
        # Every stored settings, not only the voted ones: one row per distinct settings, and no scan of the votes.
        distinct = select(Generation.settings_hash, func.min(Generation.id).label("id"))
        first = distinct.group_by(Generation.settings_hash).subquery()
        rows = s.execute(select(Generation.settings_hash, Generation.settings).join(first, first.c.id == Generation.id))
        settings = {h: dict(value) for h, value in rows}
        labels = {h: settings_label(value) for h, value in settings.items()}
        return names, labels, {labels[h]: value for h, value in settings.items()}

    def vote_tallies(self):
        """Pairwise votes counted by (left and right checkpoint, settings, backend, rater, winner) in the database.

        Returns a battles tally (columns TALLY_COLUMNS) that `workbench.ratings.scoring` ranks exactly as it
        ranks `battles()`: winner in FastChat's words, settings as labels, backends None when unknown, and `n`
        the number of votes behind each row. `frame.attrs["settings"]` maps each label to its settings dict.
        """

        columns, joins, _ = _pair_columns()
        query = select(*columns, func.count(Vote.id).label("n")).select_from(Vote)
        for table, on in joins:
            query = query.join(table, on)
        query = query.group_by(*columns)
        with self._read() as s:
            names, labels, settings = self._names_and_labels(s)
            frame = _frame(s, query, [c.key for c in columns] + ["n"])
        frame = _orient(frame, names, labels)
        keys = [c for c in TALLY_COLUMNS if c != "n"]
        frame = frame.groupby(keys, dropna=False, sort=True)["n"].sum().reset_index()[TALLY_COLUMNS]
        frame.attrs["settings"] = settings
        return frame

    def vote_sequence(self):
        """One slim row per vote, oldest first (columns SEQUENCE_COLUMNS), for what needs order or items.

        question_id is the prompt's hash cut to 32 characters, as in `battles()`; has_reason says whether the
        rater typed a reason (read them with `vote_reasons`).
        """
        import numpy as np
        import pandas as pd

        # Two flat reads and integer lookups: the votes' own columns, and what each generation contributes
        # (checkpoint, settings, backend, prompt) once per generation rather than once per vote.
        votes = select(
            Vote.id,
            Vote.generation_a_id,
            Vote.generation_b_id,
            Vote.shown_left,
            Vote.winner,
            Vote.rater,
            Vote.reason.is_not(None),
        ).order_by(Vote.created_at, Vote.id)
        generations = select(
            Generation.id,
            Generation.checkpoint_id,
            Generation.settings_hash,
            Generation.backend,
            func.substr(Generation.prompt_hash, 1, 32),
        )
        vote_keys = ["vote_id", "generation_a", "generation_b", "shown_left", "winner", "judge", "has_reason"]
        with self._read() as s:
            names, labels, settings = self._names_and_labels(s)
            frame = _frame(s, votes, vote_keys)
            gens = _frame(s, generations, ["id", "checkpoint", "settings", "backend", "question_id"])
        gens["checkpoint"] = gens["checkpoint"].map(names).astype(object)
        gens["settings"] = gens["settings"].map(labels).astype(object)
        at = pd.Index(gens["id"])
        left_is_a = (frame["shown_left"] == "a").to_numpy()
        rows_a, rows_b = at.get_indexer(frame["generation_a"]), at.get_indexer(frame["generation_b"])
        left, right = np.where(left_is_a, rows_a, rows_b), np.where(left_is_a, rows_b, rows_a)
        out = pd.DataFrame({"vote_id": frame["vote_id"], "question_id": gens["question_id"].to_numpy()[rows_a]})
        for name, column in (("model", "checkpoint"), ("settings", "settings"), ("backend", "backend")):
            values = gens[column].to_numpy(dtype=object)
            out[f"{name}_a" if name != "model" else "model_a"] = pd.Series(values[left], dtype=object)
            out[f"{name}_b" if name != "model" else "model_b"] = pd.Series(values[right], dtype=object)
        winner, shown = frame["winner"].to_numpy(dtype=object), frame["shown_left"].to_numpy(dtype=object)
        out["winner"] = pd.Series(
            np.select(
                [winner == "tie", winner == "bothbad", winner == shown],
                ["tie", "tie (bothbad)", "model_a"],
                default="model_b",
            ),
            dtype=object,
        )
        out["judge"] = frame["judge"]
        out["has_reason"] = frame["has_reason"].astype(bool)
        out = out[SEQUENCE_COLUMNS]
        out.attrs["settings"] = settings
        return out

    def vote_reasons(self, vote_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The typed reasons of these votes, newest first: vote_id, tstamp, judge, model_a, model_b (left
        first), winner (FastChat's words) and reason."""
        ids = [int(i) for i in vote_ids][:1000]
        if not ids:
            return []
        ga, gb = aliased(Generation), aliased(Generation)
        ca, cb = aliased(Checkpoint), aliased(Checkpoint)
        query = (
            select(Vote.id, Vote.created_at, Vote.rater, Vote.shown_left, Vote.winner, Vote.reason, ca.name, cb.name)
            .join(ga, ga.id == Vote.generation_a_id)
            .join(gb, gb.id == Vote.generation_b_id)
            .join(ca, ca.id == ga.checkpoint_id)
            .join(cb, cb.id == gb.checkpoint_id)
            .where(Vote.id.in_(ids), Vote.reason.is_not(None))
            .order_by(Vote.created_at.desc(), Vote.id.desc())
        )
        with self._read() as s:
            rows = s.execute(query).all()
        out = []
        for vid, tstamp, rater, left, winner, reason, name_a, name_b in rows:
            shown = (name_a, name_b) if left == "a" else (name_b, name_a)
            word = {"tie": "tie", "bothbad": "tie (bothbad)"}.get(winner) or (
                "model_a" if winner == left else "model_b"
            )
            out.append(
                {
                    "vote_id": vid,
                    "tstamp": tstamp,
                    "judge": rater,
                    "model_a": shown[0],
                    "model_b": shown[1],
                    "winner": word,
                    "reason": reason,
                }
            )
        return out
