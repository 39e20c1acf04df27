"""The pair sampler (workbench/ratings/sampler.py) and the stopping rule (settle.py) on small hand-made votes.

Run: .venv/bin/python -m pytest -q tests/ratings/test_sampler.py
The information a vote adds is checked against the two-contestant formula worked out by hand and against a
brute-force refit of the posterior; the best pair of a four-contestant case, the exploration floor, placement of a
new checkpoint across the rating range, the stopping rule's verdicts and estimates, and the leaderboard's
intervals with two votes.
"""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pandas as pd
import pytest

from tests.ratings.by_hand import ELO_PER_UNIT, map_gap
from workbench.errors import WorkbenchError
from workbench.ratings import posterior, sampler, scoring
from workbench.ratings.leaderboard import win_rate_cells
from workbench.ratings.settle import stopping_rule
from workbench.studio.compare import chosen_pair

Z = scoring.Z95
L2 = posterior.PRIOR_L2  # the prior's precision: (ELO_PER_UNIT / 200)^2


def tally(*rows: tuple[str, str, int, int, int]) -> pd.DataFrame:
    """(a, b, a's wins, b's wins, ties) rows as a battles tally."""
    out = []
    for a, b, wins, losses, ties in rows:
        out += [(a, b, "model_a", wins), (a, b, "model_b", losses), (a, b, "tie", ties)]
    frame = pd.DataFrame(out, columns=["model_a", "model_b", "winner", "n"])
    return frame[frame["n"] > 0].reset_index(drop=True)


def test_two_contestants_gain_and_rule_match_the_hand_formula():
    votes = tally(("A", "B", 30, 20, 0))
    state = sampler.fit(votes)
    d = map_gap(30, 20) / ELO_PER_UNIT  # the posterior mode's gap, log-odds
    q = 1 / (1 + math.exp(-d))
    w, w1 = 50 * q * (1 - q), q * (1 - q)
    var_d = 2 / (2 * w + L2)  # (1, -1) (w [[1, -1], [-1, 1]] + l2 I)^-1 (1, -1)^T
    assert state.rating[0] - state.rating[1] == pytest.approx(d, abs=1e-6)
    rule = state.rule
    margin = Z * ELO_PER_UNIT * math.sqrt(var_d)
    assert rule.pairs.loc[0, "margin"] == pytest.approx(margin, rel=1e-6)
    assert not rule.settled and rule.pairs.loc[0, "gap"] < margin
    assert rule.votes_needed == pytest.approx(50 * ((margin / (d * ELO_PER_UNIT)) ** 2 - 1), rel=1e-6)
    # One more vote adds p (1 - p): (margin / gap)^2 falls by Z^2 / d^2 (2 / (2w + l2) - 2 / (2(w + w1) + l2)).
    expected = Z * Z / d**2 * (2 / (2 * w + L2) - 2 / (2 * (w + w1) + L2))
    assert sampler.information_gain(state, [("A", "B")])[0] == pytest.approx(expected, rel=1e-6)


def four() -> pd.DataFrame:
    """A far above B, B far above C, C and D nearly tied: only C and D are still open."""
    return tally(("A", "B", 90, 10, 5), ("B", "C", 85, 15, 5), ("C", "D", 22, 18, 4))


def test_the_best_pair_is_the_open_near_tie_and_matches_a_brute_force_refit():
    state = sampler.fit(four())
    assert state.order == ["A", "B", "C", "D"]
    assert list(state.rule.pairs["settled"]) == [True, True, False] and state.rule.unsettled == {"C", "D"}
    candidates = list(itertools.combinations("ABCD", 2))
    gain = sampler.information_gain(state, candidates)
    assert candidates[int(np.argmax(gain))] == ("C", "D")
    # Brute force: add one vote's information to the precision, invert again, recompute (margin / gap)^2.
    index = {m: i for i, m in enumerate(state.models)}
    c = posterior.contrast(4)
    _, pairs, _, counts = scoring._matchups(four())
    precision = posterior.information(pairs, counts, state.rating, 4) + L2 * np.eye(4)
    hi, lo = index["C"], index["D"]
    gap = state.rating[hi] - state.rating[lo]

    def objective(cov):
        return Z * Z * (cov[hi, hi] + cov[lo, lo] - 2 * cov[hi, lo]) / gap**2

    before = objective(c @ np.linalg.inv(precision) @ c.T)
    for (a, b), g in zip(candidates, gain, strict=True):
        x = np.zeros(4)
        x[index[a]], x[index[b]] = 1, -1
        p = 1 / (1 + math.exp(state.rating[index[b]] - state.rating[index[a]]))
        after = objective(c @ np.linalg.inv(precision + p * (1 - p) * np.outer(x, x)) @ c.T)
        assert g == pytest.approx(before - after, rel=1e-6, abs=1e-12)


def test_chances_keep_the_floor_and_serve_only_what_is_open():
    state = sampler.fit(four())
    chances = sampler.weights(state, itertools.combinations("ABCD", 2))
    served = {("A", "C"), ("A", "D"), ("B", "C"), ("B", "D"), ("C", "D")}  # each has C or D
    assert set(chances) == served and sum(chances.values()) == pytest.approx(1)
    assert max(chances, key=chances.get) == ("C", "D")
    assert min(chances.values()) >= sampler.FLOOR / len(served) - 1e-12  # the exploration floor
    draws = [sampler.draw(chances, random.Random(seed)) for seed in range(400)]
    assert set(draws) <= served and draws.count(("C", "D")) > 200
    uniform = sampler.weights(state, [("B", "A"), ("C", "D")], mode="uniform")
    assert uniform == {("A", "B"): 0.5, ("C", "D"): 0.5}  # uniform never stops and serves settled pairs too
    with pytest.raises(WorkbenchError, match="adaptive or uniform"):
        sampler.weights(state, [("A", "B")], mode="greedy")


def test_a_settled_ranking_serves_nothing_until_a_newcomer_arrives():
    settled = tally(("A", "B", 90, 10, 0), ("B", "C", 90, 10, 0))
    state = sampler.fit(settled)
    assert state.rule.settled and state.rule.summary() == (
        "Settled after 200 votes: every pair of neighbours is separated at 95%."
    )
    assert sampler.weights(state, [("A", "B"), ("B", "C"), ("A", "C")]) == {}
    assert sampler.draw({}, random.Random(0)) is None
    chances = sampler.weights(state, [("A", "B"), ("A", "new"), ("B", "new"), ("C", "new")])
    assert set(chances) == {("A", "new"), ("B", "new"), ("C", "new")}


def test_no_votes_yet_places_every_checkpoint():
    state = sampler.fit(tally())
    assert state.models == () and not state.rule.settled
    chances = sampler.weights(state, [("a", "b"), ("a", "c"), ("b", "c")])
    assert chances == pytest.approx({("a", "b"): 1 / 3, ("a", "c"): 1 / 3, ("b", "c"): 1 / 3})


def test_a_new_checkpoint_is_placed_against_every_part_of_the_range():
    names = [f"m{k}" for k in range(8)]  # a chain of well-measured contestants, m7 the strongest
    rows = [(names[k + 1], names[k], 70, 30, 0) for k in range(7)] + [(names[7], names[0], 90, 10, 0)]
    votes = tally(*rows)
    rng = random.Random(3)
    parts = []
    for _ in range(4):
        state = sampler.fit(votes)
        rank = {m: k for k, m in enumerate(reversed(state.order))}  # 0 = weakest
        offered = [(m, "new") for m in names]
        chances = sampler.weights(state, offered)
        assert sum(chances.get(sampler._key(m, "new"), 0) for m in names) >= sampler.PLACEMENT
        place = sampler.placement(state, [sampler._key(*p) for p in offered], {"new"})
        picks = [p for p, c in zip(offered, place, strict=True) if c > 0]
        opponent = rng.choice(picks)[0]
        parts.append(rank[opponent] * sampler.PLACEMENT_BINS // 8)
        votes = pd.concat([votes, tally(("new", opponent, 1, 0, 0))], ignore_index=True)
    assert sorted(parts) == [0, 1, 2, 3]  # its first four opponents: one from each quarter of the range


def test_the_stopping_rule_on_hand_made_votes():
    few = stopping_rule(tally(("A", "B", 4, 0, 0)))
    assert not few.settled and few.few == ("A", "B") and few.votes == 4
    assert "A, B have too few votes (under 10)" in few.summary()
    assert few.pairs.loc[0, "votes_needed"] >= 6  # at least the votes that bring both to 10
    close = stopping_rule(tally(("A", "B", 50, 50, 0), ("B", "C", 80, 20, 0)))
    assert list(close.pairs["higher"]) == ["B", "A"] and list(close.pairs["separated"]) == [False, True]
    assert close.summary().startswith("Not settled yet after 200 votes: 1 of 2 neighbour pairs separated at 95%")
    gap, margin = close.pairs.loc[0, ["gap", "margin"]]
    assert close.votes_needed == pytest.approx(200 * ((margin / gap) ** 2 - 1))  # margins shrink as 1/sqrt(votes)
    tie = stopping_rule(tally(("A", "B", 50, 50, 0)))
    assert math.isinf(tie.votes_needed) and "too close to call" in tie.summary()
    # A half-width target settles a near-tie measured well enough: each interval's half-width is Z sd.
    board = scoring.leaderboard(tally(("A", "B", 50, 50, 0), ("B", "C", 80, 20, 0)), bootstrap=0).set_index("model")
    half = ((board["upper"] - board["lower"]) / 2).max()
    assert stopping_rule(tally(("A", "B", 50, 50, 0), ("B", "C", 80, 20, 0)), half_width=half + 0.5).settled
    narrower = stopping_rule(tally(("A", "B", 50, 50, 0), ("B", "C", 80, 20, 0)), half_width=half / 2)
    assert not narrower.settled and "or measured to ±" in narrower.summary()
    empty = stopping_rule(tally())
    assert not empty.settled and empty.summary().startswith("Not settled: the stopping rule needs votes")
    record = close.as_dict()
    assert record["votes"] == 200 and record["votes_needed"] == pytest.approx(close.votes_needed)
    assert len(record["pairs"]) == 2 and tie.as_dict()["votes_needed"] is None


def test_two_votes_give_wide_intervals_marked_too_few():
    board = scoring.leaderboard(tally(("A", "B", 2, 0, 0)), bootstrap=200).set_index("model")
    gap = board.loc["A", "rating"] - board.loc["B", "rating"]
    assert gap == pytest.approx(map_gap(2, 0), abs=0.1) and gap < 250  # not 1734.9 vs 265.1
    assert ((board["upper"] - board["lower"]) > 300).all()  # never zero width
    assert board.loc["A", "lower"] < board.loc["B", "upper"] and list(board["rank"]) == [1, 1]
    assert list(board["note"]) == ["too few votes", "too few votes"]
    three = tally(("A", "B", 2, 1, 0), ("B", "C", 1, 1, 0))
    cells = win_rate_cells(scoring.win_rate_matrix(three), scoring.battle_counts(three))
    assert cells.loc["A", "C"] == "never met" and cells.loc["A", "B"] == "0.67 (3)" and cells.loc["A", "A"] == ""
    assert not cells.isna().any().any() and "None" not in cells.to_string()


def test_a_chosen_pair_maps_back_to_the_checkpoints():
    names = {"base": "SmolLM2-135M-Instruct", "run-a": "run-a", "run-b": "run-b"}
    seen = []

    def choose(offered):
        seen.extend(offered)
        return ("SmolLM2-135M-Instruct", "run-b")

    assert chosen_pair(choose, names) == ["base", "run-b"]
    assert ("SmolLM2-135M-Instruct", "run-a") in seen and len(seen) == 3
    with pytest.raises(WorkbenchError, match="settled"):
        chosen_pair(lambda offered: None, names)
