"""Benchmark case arena_sampling: how many votes adaptive pairs need to settle a leaderboard, against uniform pairs.

Simulated raters vote on 8 checkpoints whose true strengths span 300 rating points, with two near-ties (25 points
apart); each vote is a tie 10% of the time, a coin flip between the two sides another 10%, and otherwise follows
Bradley-Terry with a 30-point bias for the output shown on the left (the side is drawn at random, as the Arena
does). Both samplers meet the same raters (the same random streams per seed) and the same stopping rule
(`workbench.ratings.settle`, on the board `workbench.ratings.sampler.fit` computes, refitted on the same schedule
as the Arena refreshes its fit); the only difference is who picks the pairs.

Measures (20 seeds each):
- votes to a settled ranking: the median number of votes until the stopping rule says "settled", adaptive against
  the anchor uniform (ratio adaptive / uniform; target <= 0.6). A run that is not settled after BUDGET votes counts
  as BUDGET (reported).
- Kendall's tau of the ranking against the truth, both samplers at the same budget (the adaptive median's votes).
- how often the settled order is exactly the true one.
- pair-choice latency at 100,000 votes: the sampler's part (the cached fit's chances and a draw), and a whole
  `next_pair` from a SQLite store of 100,000 votes (mark, candidate query, draw, the pair's rows) right after a
  new vote, p95 of 200 calls.

    python -m workbench bench --case arena_sampling
"""

from __future__ import annotations

import itertools
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.bench import BenchContext, Measure

STRENGTHS = (0.0, 50.0, 75.0, 130.0, 180.0, 205.0, 255.0, 300.0)  # true ratings; two near-ties 25 points apart
TIES, RANDOM, LEFT_BIAS = 0.10, 0.10, 30.0
SEEDS = 20
BUDGET = 40_000


@dataclass
class Run:
    """One simulated Arena: votes until settled (None: not within the budget) and rankings along the way."""

    mode: str
    seed: int
    settled_at: int | None
    settled_order_right: bool
    orders: dict[int, list[int]]  # votes -> contestants best first, at each refit


def _tally(counts: np.ndarray, names: list[str]) -> pd.DataFrame:
    """counts[left, right, outcome] (outcome 0: right won, 1: tie, 2: left won) as a battles tally."""
    left, right, outcome = np.nonzero(counts)
    winner = np.array(["model_b", "tie", "model_a"], dtype=object)[outcome]
    return pd.DataFrame(
        {
            "model_a": np.array(names, dtype=object)[left],
            "model_b": np.array(names, dtype=object)[right],
            "winner": winner,
            "n": counts[left, right, outcome].astype(np.int64),
        }
    )


def _fit(counts: np.ndarray, names: list[str]):
    """`sampler.fit` of the votes so far, from the counts directly (what `fit(tally)` computes, without pandas)."""
    from workbench.ratings import sampler

    left, right, outcome = np.nonzero(counts)
    pairs = np.column_stack([left, right]).astype(np.int64)
    return sampler.fit_matchups(names, pairs, outcome / 2.0, counts[left, right, outcome])


def _vote(rng: np.random.Generator, strength: np.ndarray, a: int, b: int) -> tuple[int, int, int]:
    """One simulated rater's vote on the pair (a, b): (left, right, outcome)."""
    left, right = (a, b) if rng.random() < 0.5 else (b, a)
    u = rng.random()
    if u < TIES:
        return left, right, 1
    if u < TIES + RANDOM:
        return left, right, 2 if rng.random() < 0.5 else 0
    p_left = 1.0 / (1.0 + 10.0 ** ((strength[right] - strength[left] - LEFT_BIAS) / 400.0))
    return left, right, 2 if rng.random() < p_left else 0


def simulate(mode: str, seed: int, *, strengths=STRENGTHS, budget: int = BUDGET, until: int = 0) -> Run:
    """One simulated Arena under `mode` ("adaptive" or "uniform") until settled and `until` votes, or `budget`."""
    from workbench.ratings import pairs as arena_pairs
    from workbench.ratings import sampler

    strength = np.asarray(strengths, dtype=float)
    m = len(strength)
    names = [f"ckpt-{i}" for i in range(m)]
    index = {n: i for i, n in enumerate(names)}
    everything = list(itertools.combinations(names, 2))
    votes_rng = np.random.default_rng([seed, 1])  # the raters: the same stream for both samplers
    pick_rng = random.Random(seed * 2 + (mode == "adaptive"))
    counts = np.zeros((m, m, 3))
    state = _fit(counts, names)
    chances = sampler.weights(state, everything, mode=mode)
    run = Run(mode, seed, None, False, {})
    votes = fitted = 0
    while votes < budget:
        if arena_pairs.stale(fitted, votes):
            state, fitted = _fit(counts, names), votes
            run.orders[votes] = [index[n] for n in state.order]
            if state.rule.settled and run.settled_at is None:
                run.settled_at = votes
                run.settled_order_right = run.orders[votes] == list(np.argsort(-strength, kind="stable"))
            if run.settled_at is not None and votes >= until:
                break
            chances = sampler.weights(state, everything, mode=mode) or {p: 1.0 for p in everything}
        a, b = sampler.draw(chances, pick_rng)
        left, right, outcome = _vote(votes_rng, strength, index[a], index[b])
        counts[left, right, outcome] += 1
        votes += 1
    return run


def kendall_tau(order: list[int], truth: list[int]) -> float:
    """Kendall's tau between two orderings of the same items (no ties): (concordant - discordant) / pairs."""
    position = {item: k for k, item in enumerate(order)}
    ranks = [position[item] for item in truth]
    pairs = list(itertools.combinations(range(len(ranks)), 2))
    return sum(1 if ranks[i] < ranks[j] else -1 for i, j in pairs) / len(pairs)


def _order_at(run: Run, votes: int) -> list[int]:
    """The ranking at the last refit at or before `votes`."""
    return run.orders[max(v for v in run.orders if v <= votes)]


def sampling_figures(seeds: int = SEEDS, budget: int = BUDGET) -> dict[str, float]:
    """Votes to settle (median, per sampler), runs not settled, tau at equal budgets, settled order right."""
    truth = list(np.argsort(-np.asarray(STRENGTHS), kind="stable"))
    runs = {mode: [simulate(mode, s, budget=budget) for s in range(seeds)] for mode in ("uniform", "adaptive")}
    settle = {mode: [r.settled_at or budget for r in rs] for mode, rs in runs.items()}
    equal = int(statistics.median(settle["adaptive"]))
    # The uniform runs went on to their own (later) settling, so their ranking at `equal` votes is recorded;
    # the adaptive runs that settled before `equal` are continued to it.
    for k, r in enumerate(runs["adaptive"]):
        if max(r.orders) < equal:
            runs["adaptive"][k] = simulate("adaptive", r.seed, budget=budget, until=equal)
    tau = {mode: statistics.mean(kendall_tau(_order_at(r, equal), truth) for r in rs) for mode, rs in runs.items()}
    return {
        "uniform_votes": statistics.median(settle["uniform"]),
        "adaptive_votes": statistics.median(settle["adaptive"]),
        "uniform_unsettled": sum(r.settled_at is None for r in runs["uniform"]),
        "adaptive_unsettled": sum(r.settled_at is None for r in runs["adaptive"]),
        "equal_budget": equal,
        "uniform_tau": tau["uniform"],
        "adaptive_tau": tau["adaptive"],
        "uniform_right": statistics.mean(r.settled_order_right for r in runs["uniform"]),
        "adaptive_right": statistics.mean(r.settled_order_right for r in runs["adaptive"]),
    }


def _p95(times: list[float]) -> float:
    return float(np.quantile(times, 0.95)) * 1000.0


def pair_latency(folder: Path, votes: int = 100_000, calls: int = 200) -> dict[str, float]:
    """Milliseconds to choose a pair at `votes` votes: the sampler's part on a cached fit, a whole `next_pair`
    from the store right after a new vote (p95), the cold fit, and the old least-voted `next_pair_for` (p95)."""
    from workbench.bench.votes import fill_votes
    from workbench.config import Settings
    from workbench.ratings import pairs as arena_pairs
    from workbench.store import Store

    url = f"sqlite:///{folder / 'arena.db'}"
    with Store(url) as store:
        fill_votes(store, votes=votes, checkpoints=7, prompts=200, raters=50)
        settings = Settings(home=folder, db_url=url)
        gens = store.generations()
        ids = gens.groupby("prompt")["id"].apply(list).tolist()
        start = time.perf_counter()
        chooser = arena_pairs.chooser(store, settings)
        cold = time.perf_counter() - start
        offered = list(itertools.combinations(sorted(set(gens["checkpoint"])), 2))
        sampler_times, full, old = [], [], []
        for k in range(calls):
            start = time.perf_counter()
            chooser(offered)
            sampler_times.append(time.perf_counter() - start)
            a, b = random.Random(k).sample(ids[k % len(ids)], 2)
            store.add_vote(a, b, "tie", rater=f"bench-voter-{k}")  # the mark moves before every call
            start = time.perf_counter()
            arena_pairs.next_pair(store, settings, "rater-01")  # an active rater: about 2,000 votes of their own
            full.append(time.perf_counter() - start)
            start = time.perf_counter()
            store.next_pair_for("rater-01")
            old.append(time.perf_counter() - start)
    return {
        "sampler": _p95(sampler_times),
        "full": _p95(full),
        "full_max": max(full) * 1000,
        "cold": cold * 1000,
        "old": _p95(old),
    }


def case_arena_sampling(ctx: BenchContext) -> list[Measure]:
    """Votes to a settled ranking and Kendall's tau, adaptive against uniform pairs; pair-choice latency."""
    f = sampling_figures()
    with tempfile.TemporaryDirectory() as tmp:
        ms = pair_latency(Path(tmp))
    unsettled = f"not settled by {BUDGET:,}: uniform {f['uniform_unsettled']}, adaptive {f['adaptive_unsettled']}"
    budget = f"{f['equal_budget']:,} votes each"
    return [
        Measure.against(
            "arena",
            f"votes to a settled ranking, median of {SEEDS} seeds",
            f["adaptive_votes"],
            "votes",
            "uniform pairs",
            f["uniform_votes"],
            f"target <= 0.6; {unsettled}",
        ),
        Measure.against(
            "arena",
            f"Kendall's tau vs truth, {budget}",
            f["adaptive_tau"],
            "tau",
            "uniform pairs",
            f["uniform_tau"],
            "target >= 1 (no worse)",
        ),
        Measure.against(
            "arena",
            "settled order exactly the true one",
            f["adaptive_right"],
            "share",
            "uniform pairs",
            f["uniform_right"],
        ),
        Measure("arena", "sampler's choice p95 (cached fit), 100,000 votes", ms["sampler"], "ms", note="target < 50"),
        Measure.against(
            "arena",
            "next pair p95 right after a vote, 100,000 votes",
            ms["full"],
            "ms",
            "old least-voted next_pair_for",
            ms["old"],
            f"target < 50 ms; slowest {ms['full_max']:.0f} ms; a cold fit {ms['cold']:.0f} ms",
        ),
    ]
