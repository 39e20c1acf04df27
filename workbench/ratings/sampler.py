"""Which pair to ask raters about next: the pair whose vote would most narrow the leaderboard's open questions.

Pure functions over a battles tally (`Store.vote_tallies()`, or any battles frame). `fit` is the leaderboard's own
fit (Bradley-Terry's posterior under the weak prior, `settle.posterior_fit`) with its stopping rule (`settle`);
`weights` gives each offered pair its chance of being served; `draw` picks one at random by those chances.

    state = fit(tally)                              # ratings, covariance and the stopping rule
    chances = weights(state, [("a", "b"), ("a", "c"), ("b", "c")])
    pair = draw(chances, random.SystemRandom())    # ("a", "c"), or None when nothing is left to ask

"adaptive" (the default) mixes three parts, in the spirit of Chatbot Arena's efficient-ranking sampler (Chiang et
al., 2024, section 5: pairs chosen by how much a vote would shrink the intervals):
- information: a pair's chance grows with how much one vote on it (its Fisher information p (1 - p) at the current
  ratings, a rank-one update of the covariance) would lower sum (margin / gap)^2 over the neighbour pairs not
  settled yet, the quantity the stopping rule needs below 1 for each: to the power SHARPNESS (2, measured better
  than 1 in `bench --case arena_sampling`). Near-ties still open get the votes; pairs 300 points apart almost none.
- placement: contestants with fewer than MIN_VOTES battles (a new checkpoint) get PLACEMENT of the draws, their
  opponents spread over the rating range (the range cut in PLACEMENT_BINS parts, the least played part first), as
  Inclusion Arena places new models.
- a floor: FLOOR of the draws are uniform over the pairs still served, so no pair starves.
Only pairs with a contestant still in an unsettled neighbour pair (or one with too few votes) are served, so once
the ranking is settled nothing is. The draw is random, from the server's own randomness (`random.SystemRandom` by
default): a visitor can neither predict nor steer the pair they get. "uniform" gives every offered pair the same
chance and never stops (the owner's choice: WORKBENCH_PAIRS=uniform).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.config import PAIR_MODES
from workbench.errors import WorkbenchError
from workbench.ratings import posterior, scoring
from workbench.ratings.settle import Settlement, posterior_fit, rule_of

MODES = PAIR_MODES
FLOOR = 0.1  # share of draws uniform over the served pairs: the exploration floor
PLACEMENT = 0.5  # share of draws that place contestants with too few votes, when there are any
PLACEMENT_BINS = 4  # a new contestant's first opponents come from this many parts of the rating range
SHARPNESS = 2.0  # chances grow as (information gain) ** SHARPNESS (1: Chatbot Arena's proportional rule)
MIN_GAP_ELO = 5.0  # a gap below this counts as this much, so one near-exact tie cannot take every vote
Pair = tuple[str, str]


@dataclass(frozen=True)
class Fit:
    """The contestants' ratings and how sure they are, from one tally of votes (the leaderboard's own fit).

    Attributes:
        models: Contestant names, in the order of the arrays.
        rating: Posterior-mode ratings in natural log-odds units (mean zero).
        cov: Their posterior covariance, relative to the mean (`settle.posterior_fit`).
        battles: Battles per contestant.
        games: Battles between each two contestants (symmetric).
        rule: The stopping rule on these votes (`settle.rule_of`).
    """

    models: tuple[str, ...]
    rating: np.ndarray
    cov: np.ndarray
    battles: np.ndarray
    games: np.ndarray
    rule: Settlement

    @property
    def votes(self) -> int:
        """Votes counted in the fit."""
        return self.rule.votes

    @property
    def order(self) -> list[str]:
        """The contestants, best first."""
        return [self.models[k] for k in np.argsort(-self.rating, kind="stable")]


def fit(tally: pd.DataFrame, *, half_width: float | None = None) -> Fit:
    """Ratings, covariance and the stopping rule of a battles tally (the same numbers the leaderboard shows)."""
    tally = scoring.check_battles(tally)
    if tally.empty:
        return fit_matchups([], np.zeros((0, 2), dtype=np.int64), np.zeros(0), np.zeros(0), half_width=half_width)
    return fit_matchups(*scoring._matchups(tally), half_width=half_width)


def fit_matchups(
    models: Sequence[str], pairs: np.ndarray, y: np.ndarray, counts: np.ndarray, *, half_width: float | None = None
) -> Fit:
    """`fit` from `scoring._matchups`' arrays: models, (i, j) rows, the outcome for i (1, 0.5, 0), counts."""
    m = len(models)
    r, cov, battles = posterior_fit(m, pairs, y, counts)
    games = np.zeros((m, m))
    np.add.at(games, (pairs[:, 0], pairs[:, 1]), counts)
    rule = rule_of(tuple(models), r, cov, battles, half_width=half_width)
    return Fit(tuple(models), r, cov, battles, games + games.T, rule)


def _key(a: str, b: str) -> Pair:
    return (a, b) if a <= b else (b, a)


def _open_objective(var_d: np.ndarray, var_hi, var_lo, gap: np.ndarray, half_width: float | None) -> np.ndarray:
    """sum over open neighbour pairs of (margin / gap)^2, or (widest half-width / target)^2 where that is smaller:
    what the stopping rule needs below 1 for every pair. The last axis runs over the open pairs."""
    z = scoring.Z95
    rho = z * z * var_d / gap**2
    if half_width:
        rho = np.minimum(rho, z * z * np.maximum(var_hi, var_lo) / half_width**2)
    return rho.sum(-1)


def information_gain(state: Fit, pairs: Sequence[Pair], half_width: float | None = None) -> np.ndarray:
    """For each pair (both contestants in the fit), how much one vote on it would lower the stopping rule's open
    objective (see the module docstring), by a rank-one update of the covariance: 0 when nothing is open."""
    index = {m: i for i, m in enumerate(state.models)}
    rule = state.rule.pairs
    open_ = ~rule["settled"].to_numpy(dtype=bool)
    if not open_.any() or not pairs:
        return np.zeros(len(pairs))
    hi = np.array([index[m] for m in rule["higher"].to_numpy()[open_]])
    lo = np.array([index[m] for m in rule["lower"].to_numpy()[open_]])
    unit = posterior.ELO_PER_UNIT
    gap = np.maximum(state.rating[hi] - state.rating[lo], MIN_GAP_ELO / unit)
    target = half_width / unit if half_width else None
    ij = np.array([(index[a], index[b]) for a, b in pairs])
    x = np.zeros((len(pairs), len(state.models)))
    x[np.arange(len(pairs)), ij[:, 0]], x[np.arange(len(pairs)), ij[:, 1]] = 1.0, -1.0
    p = posterior.win_probability(state.rating, ij)
    w = p * (1.0 - p)
    sx = x @ state.cov  # (candidates, models): cov x
    scale = (w / (1.0 + w * np.einsum("pm,pm->p", sx, x)))[:, None]
    cov, var = state.cov, np.diag(state.cov)
    var_d = var[hi] + var[lo] - 2 * cov[hi, lo]
    before = _open_objective(var_d, var[hi], var[lo], gap, target)
    after_d = var_d[None, :] - scale * (sx[:, hi] - sx[:, lo]) ** 2
    after = _open_objective(after_d, var[hi] - scale * sx[:, hi] ** 2, var[lo] - scale * sx[:, lo] ** 2, gap, target)
    return np.clip(before - after, 0.0, None)


def placement(state: Fit, pairs: Sequence[Pair], new: set[str]) -> np.ndarray:
    """Chances (summing to 1) for the pairs that place the `new` contestants: each newcomer an equal share, on its
    pairs with the least played opponents in the least played part of the rating range (PLACEMENT_BINS parts)."""
    index = {m: i for i, m in enumerate(state.models)}
    rating = {m: state.rating[i] for m, i in index.items()}
    chances = np.zeros(len(pairs))
    for newcomer in sorted(new):
        mine = [k for k, pair in enumerate(pairs) if newcomer in pair]
        opponents = [pairs[k][1] if pairs[k][0] == newcomer else pairs[k][0] for k in mine]
        order = np.argsort([rating.get(o, 0.0) for o in opponents], kind="stable")
        parts = np.empty(len(order), dtype=int)
        parts[order] = np.arange(len(order)) * min(PLACEMENT_BINS, len(order)) // max(len(order), 1)
        played = np.array([_games(state, index, newcomer, o) for o in opponents])
        per_part = np.array([played[parts == b].sum() for b in range(parts.max() + 1)])
        fewest_part = per_part[parts] == per_part.min()
        fewest = fewest_part & (played == played[fewest_part].min())
        for k, pick in zip(mine, fewest, strict=True):
            chances[k] += pick / fewest.sum() / len(new)
    return chances


def _games(state: Fit, index: Mapping[str, int], a: str, b: str) -> float:
    return float(state.games[index[a], index[b]]) if a in index and b in index else 0.0


def weights(
    state: Fit | None, offered: Iterable[Pair], *, mode: str = "adaptive", half_width: float | None = None
) -> dict[Pair, float]:
    """Each offered pair's chance of being served (summing to 1), or {} when none should be.

    Args:
        state: `fit` of the votes so far (None will do for "uniform").
        offered: The contestant pairs that have something to serve (names in either order; repeats ignored).
        mode: "adaptive" or "uniform" (see the module docstring).
        half_width: The owner's half-width target in rating points (what `state` was fitted with).
    """
    if mode not in MODES:
        raise WorkbenchError(f"Pairs are chosen {' or '.join(MODES)}, not {mode!r}.")
    pairs = sorted({_key(a, b) for a, b in offered if a != b})
    if mode == "uniform" or not pairs:
        return {pair: 1.0 / len(pairs) for pair in pairs}
    index = {m: i for i, m in enumerate(state.models)}
    battles = {m: state.battles[i] for m, i in index.items()}
    new = {m for pair in pairs for m in pair if battles.get(m, 0) < scoring.MIN_VOTES}
    open_ = state.rule.unsettled | new
    pairs = [pair for pair in pairs if open_ & set(pair)]
    if not pairs:
        return {}
    known = [k for k, (a, b) in enumerate(pairs) if a in index and b in index]
    gain = np.zeros(len(pairs))
    gain[known] = information_gain(state, [pairs[k] for k in known], half_width) ** SHARPNESS
    parts = [(FLOOR, np.ones(len(pairs))), (PLACEMENT if new else 0.0, placement(state, pairs, new))]
    parts.append((1.0 - sum(share for share, _ in parts), gain))
    chances = sum(share * part / part.sum() for share, part in parts if share > 0 and part.sum() > 0)
    chances = chances / chances.sum()
    return {pair: float(c) for pair, c in zip(pairs, chances, strict=True) if c > 0}


def draw(chances: Mapping[Pair, float], rng: random.Random | None = None) -> Pair | None:
    """One pair drawn by its chance (None when there is none), from `rng` or the system's randomness."""
    if not chances:
        return None
    rng = rng or random.SystemRandom()
    pairs = list(chances)
    return rng.choices(pairs, weights=[chances[p] for p in pairs])[0]
