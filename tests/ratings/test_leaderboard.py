"""Tests of workbench.ratings.leaderboard's filters on the backend that made the rated outputs, over a real store.

Run: .venv/bin/python -m pytest -q tests/ratings/test_leaderboard.py
The store (SQLite, and PostgreSQL through the `db_url` fixture) holds outputs of two checkpoints made by llama.cpp,
by transformers, and by an unrecorded backend; battles count for a backend when both their outputs come from a
chosen one, Likert scores when their output does, and unrecorded backends are offered and filtered as "unknown".
"""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.ratings.leaderboard import backends_of, filter_options, filter_ratings, standings
from workbench.store import Store

ALL = ["llamacpp", "transformers", "unknown"]


@pytest.fixture
def ratings(db_url) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(battles, likert) of an arena where tuned wins on llama.cpp, base wins on transformers, and two outputs
    have no recorded backend."""
    with Store(db_url) as store:
        made = {}
        for backend in ("llamacpp", "transformers", ""):
            for checkpoint in ("base", "tuned"):
                stats = {"backend": backend}
                made[checkpoint, backend or "unknown"] = store.add_generation(
                    checkpoint, "Hi?", f"{checkpoint} via {backend}", None, stats=stats
                )

        def again(checkpoint: str, backend: str, i: int) -> int:
            """Another output of the same checkpoint and backend: a rater judges each pair once."""
            output = f"{checkpoint} via {backend}, take {i}"
            return store.add_generation(checkpoint, "Hi?", output, None, stats={"backend": backend})

        for i in range(3):
            pair = (
                (made["base", "llamacpp"], made["tuned", "llamacpp"])
                if i == 0
                else (again("base", "llamacpp", i), again("tuned", "llamacpp", i))
            )
            store.add_vote(*pair, "b", rater="alice", shown_left="ab"[i % 2])
        for i in range(2):
            pair = (
                (made["base", "transformers"], made["tuned", "transformers"])
                if i == 0
                else (again("base", "transformers", i), again("tuned", "transformers", i))
            )
            store.add_vote(*pair, "a", rater="bob")
        store.add_vote(made["base", "llamacpp"], made["tuned", "transformers"], "tie", rater="carol", shown_left="b")
        store.add_vote(made["base", "unknown"], made["tuned", "unknown"], "a", rater="carol")
        store.add_likert(made["base", "llamacpp"], 5, rater="alice")
        store.add_likert(made["tuned", "transformers"], 2, rater="bob")
        store.add_likert(made["base", "unknown"], 3, rater="carol")
        return store.battles(), store.likert()


def test_options_list_the_backends_present_with_unknown(ratings):
    battles, likert = ratings
    assert filter_options(battles, likert)["backends"] == ALL
    assert backends_of(battles) == ALL and backends_of(likert) == ALL
    llama_only = filter_ratings(likert, backends=["llamacpp"])
    assert filter_options(battles.iloc[:0], llama_only)["backends"] == ["llamacpp"]
    assert filter_options(battles.iloc[:0], likert.iloc[:0])["backends"] == []


def test_battles_count_when_both_outputs_come_from_a_chosen_backend(ratings):
    battles, _ = ratings
    llama = filter_ratings(battles, backends=["llamacpp"])
    assert len(llama) == 3 and set(llama["judge"]) == {"alice"} and backends_of(llama) == ["llamacpp"]
    board = standings(llama, llama.iloc[:0], bootstrap=0).board
    assert list(board["model"]) == ["tuned", "base"] and board.iloc[0]["wins"] == 3
    hf = filter_ratings(battles, backends=["transformers"])
    assert len(hf) == 2 and list(standings(hf, hf.iloc[:0], bootstrap=0).board["model"]) == ["base", "tuned"]
    both = filter_ratings(battles, backends=["transformers", "llamacpp"])
    assert len(both) == 6 and "carol" in set(both["judge"])  # the mixed battle needs both backends chosen
    mixed = both[both["judge"] == "carol"].iloc[0]
    assert (mixed.model_a, mixed.backend_a, mixed.model_b, mixed.backend_b) == (
        "tuned",
        "transformers",
        "base",
        "llamacpp",
    )
    unknown = filter_ratings(battles, backends=["unknown"])
    assert len(unknown) == 1 and unknown.iloc[0]["winner"] == "model_a"
    assert len(filter_ratings(battles, backends=None)) == len(filter_ratings(battles, backends=[])) == 7
    assert len(filter_ratings(battles, backends=["llamacpp"], raters=["bob"])) == 0  # filters combine


def test_likert_scores_count_when_their_output_comes_from_a_chosen_backend(ratings):
    battles, likert = ratings
    hf = filter_ratings(likert, backends=["transformers"])
    assert hf[["model", "score"]].values.tolist() == [["tuned", 2]]
    unknown = filter_ratings(likert, backends=["unknown"])
    assert unknown[["model", "score"]].values.tolist() == [["base", 3]]
    two = filter_ratings(likert, backends=["llamacpp", "unknown"])
    assert sorted(two["score"]) == [3, 5]
    summary = standings(battles.iloc[:0], two, bootstrap=0).likert.set_index("model")
    assert summary.loc["base", "mean"] == 4 and summary.loc["base", "n"] == 2


def test_battles_without_backend_columns_count_as_unknown():
    # a FastChat clean-battle file has no backend columns
    fastchat = pd.DataFrame([{"model_a": "x", "model_b": "y", "winner": "model_a", "judge": "j"}] * 2)
    assert backends_of(fastchat) == ["unknown"]
    assert len(filter_ratings(fastchat, backends=["unknown"])) == 2
    assert filter_ratings(fastchat, backends=["llamacpp"]).empty
