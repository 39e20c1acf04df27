"""Tests of workbench.ratings.scoring and workbench.ratings.agreement: hand-computed cases and a synthetic arena
with a known order.

Run: .venv/bin/python -m pytest -q tests/ratings/test_scoring.py
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from workbench.errors import WorkbenchError
from workbench.ratings.agreement import agreement, cohen_kappa, krippendorff_alpha, pairwise_kappa, pairwise_labels
from workbench.ratings.scoring import (
    battle_counts,
    bootstrap_bradley_terry,
    bradley_terry,
    leaderboard,
    likert_summary,
    load_battles,
    online_elo,
    position_bias,
    ranks_from_intervals,
    wilson_interval,
    win_rate_matrix,
)

ELO_PER_LOG10 = 400.0


def battles_of(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["model_a", "model_b", "winner"])


def repeat(a: str, b: str, winner: str, n: int) -> list[tuple[str, str, str]]:
    return [(a, b, winner)] * n


def test_two_models_closed_form_with_ties_as_half():
    # A beats B 3 times, B beats A once, 2 ties: A has 3 + 1 = 4 "wins" of 6, so P(A>B) = 2/3 and the MLE
    # difference is 400 * log10((2/3) / (1/3)) = 400 * log10(2); the mean sits at 1000.
    rows = repeat("A", "B", "model_a", 3) + repeat("B", "A", "model_a", 1) + repeat("A", "B", "tie", 1)
    rows += repeat("B", "A", "tie (bothbad)", 1)
    ratings = bradley_terry(battles_of(rows), l2=0)
    gap = ELO_PER_LOG10 * math.log10(2)
    assert ratings["A"] == pytest.approx(1000 + gap / 2, abs=1e-6)
    assert ratings["B"] == pytest.approx(1000 - gap / 2, abs=1e-6)
    # the default small penalty moves it by a hair only
    assert bradley_terry(battles_of(rows))["A"] == pytest.approx(1000 + gap / 2, abs=0.05)


def test_three_models_consistent_frequencies_are_the_mle():
    # Observed frequencies A>B 2/3, B>C 2/3, A>C 4/5 fit BT exactly (odds 2, 2, 4 = 2 * 2), so the MLE
    # reproduces them: A - B = B - C = 400 log10 2, and anchoring B puts B at 1000.
    rows = repeat("A", "B", "model_a", 2) + repeat("A", "B", "model_b", 1)
    rows += repeat("B", "C", "model_a", 2) + repeat("C", "B", "model_a", 1)
    rows += repeat("A", "C", "model_a", 4) + repeat("C", "A", "model_a", 1)
    ratings = bradley_terry(battles_of(rows), anchor="B", l2=0)
    gap = ELO_PER_LOG10 * math.log10(2)
    assert list(ratings.index) == ["A", "B", "C"]
    assert ratings.to_dict() == pytest.approx({"A": 1000 + gap, "B": 1000.0, "C": 1000 - gap}, abs=1e-6)


def test_model_that_never_lost_gets_a_finite_rating():
    ratings = bradley_terry(battles_of(repeat("A", "B", "model_a", 5)))
    assert np.isfinite(ratings).all() and ratings["A"] > ratings["B"] + 400


def test_online_elo_by_hand():
    # 1st battle: both at 1000, expected 0.5 -> A 1002, B 998.
    # 2nd battle, B wins: expected_B = 1 / (1 + 10^((1002 - 998) / 400)); B gains 4 * (1 - expected_B).
    elo = online_elo(battles_of([("A", "B", "model_a"), ("A", "B", "model_b")]))
    expected_b = 1 / (1 + 10 ** (4 / 400))
    assert elo["B"] == pytest.approx(998 + 4 * (1 - expected_b))
    assert elo["A"] == pytest.approx(1002 - 4 * (1 - expected_b))
    # tstamp order wins over row order
    timed = pd.DataFrame(
        {"model_a": ["A", "A"], "model_b": ["B", "B"], "winner": ["model_b", "model_a"], "tstamp": [2, 1]}
    )
    assert online_elo(timed).to_dict() == pytest.approx(elo.to_dict())


@pytest.fixture(scope="module")
def synthetic():
    """3000 battles among 5 models with known ratings (strongest first), outcomes drawn from Bradley-Terry."""
    true = pd.Series([1300.0, 1150.0, 1000.0, 900.0, 750.0], index=["m1", "m2", "m3", "m4", "m5"])
    rng = np.random.default_rng(7)
    rows = []
    for t in range(3000):
        i, j = rng.choice(len(true), 2, replace=False)
        a, b = true.index[i], true.index[j]
        p_a = 1 / (1 + 10 ** ((true[b] - true[a]) / 400))
        rows.append((a, b, "model_a" if rng.random() < p_a else "model_b", t))
    return true - true.mean() + 1000, pd.DataFrame(rows, columns=["model_a", "model_b", "winner", "tstamp"])


def test_bradley_terry_recovers_known_order_and_intervals_cover_truth(synthetic):
    true, battles = synthetic
    board = leaderboard(battles, bootstrap=300, seed=0)
    assert list(board["model"]) == list(true.index)
    assert list(board["rank"]) == [1, 2, 3, 4, 5]  # gaps of 100+ points: no overlapping intervals
    board = board.set_index("model")
    covered = ((board["lower"] <= true) & (true <= board["upper"])).sum()
    assert covered >= 4  # 95% intervals: all or nearly all contain the truth
    assert (board["upper"] - board["lower"]).between(10, 120).all()
    assert (board["rating"] - true).abs().max() < 40
    assert board["battles"].sum() == 2 * len(battles) and (board["ties"] == 0).all()
    # online Elo, for reference, gets the order too
    assert list(board["elo"].sort_values(ascending=False).index) == list(true.index)


def test_bootstrap_is_seeded_and_anchorable(synthetic):
    _, battles = synthetic
    first = bootstrap_bradley_terry(battles, 50, seed=3)
    assert first.equals(bootstrap_bradley_terry(battles, 50, seed=3))
    assert not first.equals(bootstrap_bradley_terry(battles, 50, seed=4))
    assert first.mean(axis=1).to_numpy() == pytest.approx(1000.0)
    anchored = bootstrap_bradley_terry(battles, 20, seed=3, anchor="m3")
    assert (anchored["m3"] == 1000.0).all()
    with pytest.raises(WorkbenchError, match="anchor model"):
        bradley_terry(battles, anchor="nope")


def test_ranks_from_overlapping_intervals():
    lower = pd.Series({"a": 1100, "b": 1090, "c": 1000, "d": 900})
    upper = pd.Series({"a": 1200, "b": 1150, "c": 1095, "d": 1010})
    # c: only a's lower bound (1100) is above c's upper bound (1095) -> rank 2, tied with b
    assert ranks_from_intervals(lower, upper).to_dict() == {"a": 1, "b": 1, "c": 2, "d": 3}


def test_win_rate_matrix_counts_and_position_bias():
    rows = repeat("A", "B", "model_a", 3) + repeat("B", "A", "model_a", 1) + repeat("A", "B", "tie", 1)
    rows += repeat("A", "C", "model_b", 2)
    battles = battles_of(rows)
    matrix = win_rate_matrix(battles)
    assert matrix.loc["A", "B"] == pytest.approx(3 / 5) and matrix.loc["B", "A"] == pytest.approx(1 / 5)
    assert matrix.loc["C", "A"] == 1.0 and math.isnan(matrix.loc["B", "C"])
    counts = battle_counts(battles)
    assert counts.loc["A", "B"] == counts.loc["B", "A"] == 5 and counts.loc["A", "C"] == 2 and counts.loc["B", "C"] == 0
    bias = position_bias(battles)  # left (model_a) won 4 of 6 decisive votes
    assert (bias["left_wins"], bias["decisive"], bias["ties"]) == (4, 6, 1)
    assert bias["rate"] == pytest.approx(4 / 6) and bias["lower"] < 0.5 < bias["upper"]
    # Wilson for 4/6, z = 1.96: centre (4/6 + z^2/12) / (1 + z^2/6) = 0.6016, half-width 0.3016
    assert wilson_interval(4, 6) == pytest.approx((0.3000, 0.9032), abs=1e-4)


def test_likert_summary_intervals():
    likert = pd.DataFrame({"model": ["a"] * 4 + ["b"] * 3, "score": [5, 4, 5, 4, 1, 2, 3]})
    table = likert_summary(likert, bootstrap=500, seed=0).set_index("model")
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "mean"] == 4.5 and table.loc["b", "mean"] == 2.0 and table.loc["b", "n"] == 3
    assert 4.0 <= table.loc["a", "lower"] <= 4.5 <= table.loc["a", "upper"] <= 5.0
    assert table.loc["b", "sd"] == pytest.approx(1.0)


def test_cohen_kappa_by_hand():
    # agree on 8 of 10 items; each rater says 1 six times -> p_e = 0.6^2 + 0.4^2 = 0.52
    r1 = [1, 1, 0, 0, 1, 0, 1, 1, 0, 1]
    r2 = [1, 0, 0, 0, 1, 1, 1, 1, 0, 1]
    assert cohen_kappa(r1, r2) == pytest.approx((0.8 - 0.52) / (1 - 0.52))
    assert cohen_kappa([1, 2, 3], [1, 2, 3]) == 1.0
    assert math.isnan(cohen_kappa([1, 1], [1, 1]))


def test_krippendorff_alpha_matches_published_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers, 12 units, missing values.
    data = {
        "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    }
    rows = [(u, r, v) for r, values in data.items() for u, v in enumerate(values) if v is not None]
    table = pd.DataFrame(rows, columns=["item", "rater", "label"])
    assert krippendorff_alpha(table) == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(table, "interval") == pytest.approx(0.849, abs=5e-4)
    summary = agreement(table)
    assert summary["items"] == 11 and summary["raters"] == 4  # unit 12 has a single value
    assert len(summary["kappa"]) == 6


def test_pairwise_labels_ignore_left_right_order():
    battles = pd.DataFrame(
        {
            "question_id": ["q1", "q1", "q2", "q2"],
            "model_a": ["x", "y", "x", "y"],
            "model_b": ["y", "x", "y", "x"],
            "winner": ["model_a", "model_b", "tie", "model_a"],
            "judge": ["ann", "bob", "ann", "bob"],
        }
    )
    table = pairwise_labels(battles)
    assert table["item"].nunique() == 2 and list(table["label"]) == ["x", "x", "tie", "y"]
    kappa = pairwise_kappa(table)
    assert kappa.loc[0, "items"] == 2  # ann and bob agree on q1 only: p_o = 0.5


def test_load_battles_reads_fastchat_json_and_jsonl_and_names_bad_lines(tmp_path):
    battle = {"model_a": "a", "model_b": "b", "winner": "tie (bothbad)", "judge": "arena_user_1", "tstamp": 1.0}
    as_json = tmp_path / "clean_battle.json"
    as_json.write_text(json.dumps([battle, battle], indent=2))
    assert len(load_battles(as_json)) == 2
    as_jsonl = tmp_path / "battles.jsonl"
    as_jsonl.write_text(json.dumps(battle) + "\n\n" + json.dumps({**battle, "winner": "model_c"}) + "\n")
    with pytest.raises(WorkbenchError, match=r"Line 3 of battles\.jsonl has winner 'model_c'"):
        load_battles(as_jsonl)
    as_jsonl.write_text(json.dumps(battle) + "\n{oops\n")
    with pytest.raises(WorkbenchError, match=r"Line 2 of battles\.jsonl is not valid JSON"):
        load_battles(as_jsonl)
    as_json.write_text(json.dumps([battle, {"model_a": "a", "model_b": "a", "winner": "tie"}]))
    with pytest.raises(WorkbenchError, match=r"Record 2 of clean_battle\.json has the same model"):
        load_battles(as_json)
