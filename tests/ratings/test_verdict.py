"""The verdict on a child checkpoint against its parent: the Arena's difference on synthetic votes with a known
difference, the rule's edge cases, and the intervals against published values.

Run: .venv/bin/python -m pytest -q tests/ratings/test_verdict.py
Pure: battles frames and counts made here, no store, no model.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench.ratings.verdict import BETTER, UNKNOWN, WORSE, Signal, adjusted_level, decide, z_of
from workbench.ratings.versus import ArenaEvidence, arena_evidence, judge_signals, like_signal, newcombe_interval

CHILD, PARENT, OTHER = "run/checkpoint-40", "run/checkpoint-20", "SmolLM2-135M-Instruct"


def battles(p_child: float, n: int, seed: int = 0, others: int = 0) -> pd.DataFrame:
    """n votes of child against parent, the child winning each with probability p_child (sides at random), plus
    `others` even votes of each against a third checkpoint."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        won = rng.random() < p_child
        left = rng.random() < 0.5
        a, b = (CHILD, PARENT) if left else (PARENT, CHILD)
        rows.append((a, b, "model_a" if won == left else "model_b"))
    for i in range(others):
        for model in (CHILD, PARENT):
            rows.append((model, OTHER, "model_a" if i % 2 else "model_b"))
    return pd.DataFrame(rows, columns=["model_a", "model_b", "winner"])


def test_a_known_better_child_is_better_and_its_difference_is_near_the_truth():
    arena = arena_evidence(battles(0.75, 300), CHILD, PARENT)
    truth = 400 * math.log10(0.75 / 0.25)  # 191 Elo points for a 75% win rate
    assert arena.lower > 0 and arena.lower < truth < arena.upper
    assert arena.votes_between == 300 and arena.wins + arena.losses == 300 and arena.settled
    verdict = decide(arena)
    assert verdict.outcome == BETTER and verdict.decided_by == "arena"
    assert "excludes 0" in verdict.reason


def test_a_known_worse_child_is_worse():
    arena = arena_evidence(battles(0.25, 300, seed=1), CHILD, PARENT)
    assert arena.upper < 0
    assert decide(arena).outcome == WORSE


def test_few_votes_are_not_yet_known_even_when_all_won():
    arena = arena_evidence(battles(1.0, 6), CHILD, PARENT)
    assert arena.wins == 6 and not arena.enough and not arena.settled
    verdict = decide(arena)
    assert verdict.outcome == UNKNOWN
    assert "6 of the 10 votes" in verdict.reason


def test_an_even_match_is_not_yet_known_and_the_stopping_rule_says_how_far():
    arena = arena_evidence(battles(0.5, 400, seed=3), CHILD, PARENT)
    assert arena.lower < 0 < arena.upper and not arena.settled
    assert decide(arena).outcome == UNKNOWN
    assert "Arena: child" in arena.summary() and "stopping rule: not settled" in arena.summary()
    # measured to +-40 points, the near-tie counts as settled for the stopping rule, still not a verdict
    measured = arena_evidence(battles(0.5, 400, seed=3), CHILD, PARENT, half_width=40)
    assert measured.settled and decide(measured).outcome == UNKNOWN


def test_votes_against_other_checkpoints_count_through_the_fit():
    alone = arena_evidence(battles(0.7, 40), CHILD, PARENT)
    more = arena_evidence(battles(0.7, 40, others=30), CHILD, PARENT)
    assert more.child_battles == 70 and more.votes_between == 40
    assert 0 < more.difference < alone.difference  # both even against a third: pulled towards equal
    # never side by side, but the child beat a third checkpoint 3 times in 4 and the parent 1 time in 4
    rows = [(CHILD, OTHER, "model_a" if i % 4 else "model_b") for i in range(100)]
    rows += [(PARENT, OTHER, "model_b" if i % 4 else "model_a") for i in range(100)]
    indirect = arena_evidence(pd.DataFrame(rows, columns=["model_a", "model_b", "winner"]), CHILD, PARENT)
    assert indirect.votes_between == 0 and indirect.lower > 0 and decide(indirect).outcome == BETTER


def test_no_votes_on_one_side():
    arena = arena_evidence(battles(0.7, 20).query("model_a != @PARENT and model_b != @PARENT"), CHILD, PARENT)
    assert math.isnan(arena.difference) and decide(arena).outcome == UNKNOWN
    empty = arena_evidence(battles(0.7, 0), CHILD, PARENT)
    assert "no Arena votes" in decide(empty).reason and decide(None).outcome == UNKNOWN
    assert empty.as_dict()["difference"] is None


def fixed(name: str, lower: float, upper: float, higher: bool = True, counted: bool = True) -> Signal:
    return Signal(name, "metric", 1.0, 0.0, higher, 10, lambda level: (lower, upper), counted)


def undecided_arena() -> ArenaEvidence:
    return ArenaEvidence(CHILD, PARENT, 20.0, -30.0, 70.0, 12, 7, 5, 0, 12, 12)


def test_secondary_evidence_decides_only_when_the_arena_cannot():
    up = fixed("chrF on x", 0.5, 2.0)
    assert decide(undecided_arena(), [up]).outcome == BETTER
    # lower is better: an interval below 0 is the child's gain
    assert decide(undecided_arena(), [fixed("perplexity", -3.0, -1.0, higher=False)]).outcome == BETTER
    assert decide(undecided_arena(), [fixed("BLEU on x", -2.0, -0.5)]).outcome == WORSE
    # the Arena, when it decides, overrides the secondary evidence and the reason says who disagrees
    decided = ArenaEvidence(CHILD, PARENT, -80.0, -120.0, -40.0, 200, 60, 140, 0, 200, 200)
    verdict = decide(decided, [up])
    assert verdict.outcome == WORSE and "chrF on x points the other way" in verdict.reason


def test_disagreeing_or_uncounted_signals_are_not_yet_known():
    split = decide(undecided_arena(), [fixed("chrF on x", 0.5, 2.0), fixed("like rate", -0.4, -0.1)])
    assert split.outcome == UNKNOWN and "disagrees" in split.reason
    shown_only = decide(undecided_arena(), [fixed("judge:x's win share", 0.2, 0.4, counted=False)])
    assert shown_only.outcome == UNKNOWN and "no secondary signal counts" in shown_only.reason
    no_interval = Signal("perplexity on shakespeare", "metric", 20.0, 25.0, False, 5)
    assert decide(undecided_arena(), [no_interval]).outcome == UNKNOWN


def test_bonferroni_takes_each_interval_at_the_adjusted_level():
    assert adjusted_level(1) == 0.95 and adjusted_level(4) == pytest.approx(0.9875)
    # a difference of 2 with a standard error of 1: outside 0 at 95% (z 1.96), inside at 98.75% (z 2.50)
    normal = Signal("BLEU on x", "metric", 2.0, 0.0, True, 10, lambda level: (2 - z_of(level), 2 + z_of(level)))
    flat = [fixed(f"flat {i}", -1.0, 1.0) for i in range(3)]
    assert decide(undecided_arena(), [normal]).outcome == BETTER
    verdict = decide(undecided_arena(), [normal, *flat])
    assert verdict.outcome == UNKNOWN and verdict.level == pytest.approx(0.9875)
    assert verdict.as_dict()["signals"][0]["interval_95"][0] > 0


def test_newcombe_interval_matches_the_published_example():
    # Newcombe (1998), Table II, example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339
    lower, upper = newcombe_interval(56, 70, 48, 80)
    assert (lower, upper) == pytest.approx((0.0524, 0.3339), abs=5e-4)
    assert all(math.isnan(v) for v in newcombe_interval(1, 0, 1, 2))


def test_like_rate_signal():
    reactions = pd.DataFrame(
        {
            "model": [CHILD] * 40 + [PARENT] * 40,
            "kind": ["like"] * 34 + ["dislike"] * 6 + ["like"] * 16 + ["dislike"] * 24,
        }
    )
    signal = like_signal(reactions, CHILD, PARENT)
    assert (signal.child, signal.parent) == (0.85, 0.4) and signal.direction(0.95) == 1
    assert signal.note.startswith("34/40 liked (95% 0.71 to 0.93) against 16/40 liked")  # Wilson, each side
    few = like_signal(reactions.iloc[30:50], CHILD, PARENT)  # 10 of the child's, 10 of the parent's
    assert few.counted and not like_signal(reactions.iloc[31:50], CHILD, PARENT).counted
    none = like_signal(reactions[reactions["model"] == CHILD], CHILD, PARENT)
    assert not none.counted and none.interval is None and none.parent is None


def test_a_judge_counts_only_where_it_agrees_with_people():
    tally = battles(0.8, 60).assign(judge="judge:smol")
    calibrated = {"judge:smol": {"kappa": 0.4, "comparisons": 25}}
    [signal] = judge_signals(tally, calibrated, CHILD, PARENT)
    assert signal.counted and signal.direction(0.95) == 1 and signal.n == 60 and "kappa 0.40" in signal.note
    [chance] = judge_signals(tally, {"judge:smol": {"kappa": -0.1, "comparisons": 25}}, CHILD, PARENT)
    [unmeasured] = judge_signals(tally, {}, CHILD, PARENT)
    assert not chance.counted and not unmeasured.counted and "none measured" in unmeasured.note
    assert judge_signals(tally.iloc[:0], {}, CHILD, PARENT) == []
