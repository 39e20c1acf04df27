"""Which pair to ask raters about next: the pair whose vote would most narrow the leaderboard's open questions.

Pure functions over a battles tally (`Store.vote_tallies()`, or any battles frame). `fit` ranks the contestants
(`scoring.leaderboard`, the posterior of `posterior`) and applies the stopping rule (`settle`); `weights` gives
each offered pair its chance of being served; `draw` picks one at random by those chances.

    state = fit(tally)                              # ratings, covariance, the board and its stopping rule
    chances = weights(state, [("a", "b"), ("a", "c"), ("b", "c")])
    pair = draw(chances, random.SystemRandom())    # ("a", "c"), or None when nothing is left to ask

"adaptive" (the default) mixes three parts, as Chatbot Arena's efficient-ranking sampler does (Chiang et al.,
2024, section 5: pairs in proportion to how much a vote shrinks the intervals):
- information: the chance of a pair is proportional to how much one vote on it (its Fisher information,
  p (1 - p) for the current ratings) would lower sum (half-widths facing each other / gap)^2 over the neighbour
  pairs that are not settled yet: the quantity the stopping rule needs below 1. Near-ties that are still open
  get the votes; pairs already 300 points apart get almost none.
- placement: a contestant with fewer than MIN_VOTES battles (a new checkpoint) gets PLACEMENT of the draws, its
  opponents spread over the rating range (the range cut in PLACEMENT_BINS parts, the least played part first),
  as Inclusion Arena places new models.
- a floor: FLOOR of the draws are uniform over the pairs still served, so no pair starves.
Only pairs with a contestant still in an unsettled neighbour pair (or one with too few votes) are served, so once
the ranking is settled nothing is. The draw is random, from the server's own randomness (`random.SystemRandom`
by default): a visitor can neither predict nor steer the pair they get. "uniform" gives every offered pair the
same chance and never stops (the owner's choice: WORKBENCH_PAIRS=uniform).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.config import PAIR_MODES
from workbench.errors import WorkbenchError
from workbench.ratings import posterior, scoring
from workbench.ratings.settle import Settlement, rule_of, stopping_rule

MODES = PAIR_MODES
FLOOR = 0.1  # share of draws uniform over the served pairs: the exploration floor
PLACEMENT = 0.5  # share of draws that place contestants with too few votes, when there are any
PLACEMENT_BINS = 4  # a new contestant's first opponents come from this many parts of the rating range
SHARPNESS = 1.0  # chances grow as (information gain) ** SHARPNESS; 1 is Chatbot Arena's proportional rule
MIN_GAP_ELO = 5.0  # a gap below this counts as this much, so one near-exact tie cannot take every vote
Pair = tuple[str, str]


@dataclass(frozen=True)
class Fit:
    """The contestants' ratings and how sure they are, from one tally of votes.

    Attributes:
        models: Contestant names, in the order of the arrays.
        rating: Posterior-mode ratings in natural log-odds units (mean zero).
        cov: Their posterior covariance (`posterior.covariance`), relative to the mean.
        battles: Battles per contestant.
        games: Battles between each two contestants (symmetric).
        board: model, rating, lower, upper, battles, best first, with the posterior's intervals (the full
            `scoring.leaderboard` with bootstrap intervals once those say "settled").
        rule: `settle.stopping_rule` of the board.
    """

    models: tuple[str, ...]
    rating: np.ndarray
    cov: np.ndarray
    battles: np.ndarray
    games: np.ndarray
    board: pd.DataFrame
    rule: Settlement

    @property
    def votes(self) -> int:
        """Votes counted in the fit."""
        return self.rule.votes


def fit(tally: pd.DataFrame, *, half_width: float | None = None, bootstrap: int = 1000, seed: int = 0) -> Fit:
    """Ratings, covariance, the board and the stopping rule of a battles tally.

    The board's intervals are the posterior's (what `scoring.leaderboard(bootstrap=0)` gives); only when they say
    "settled" is the board recomputed with `bootstrap` rounds, as the Leaderboard page computes it (its intervals
    are never narrower), so the page and the Arena agree on "settled" for the same votes.
    """
    tally = scoring.check_battles(tally)
    if tally.empty:
        return fit_matchups([], np.zeros((0, 2), dtype=np.int64), np.zeros(0), np.zeros(0), half_width=half_width)

    def full_board() -> pd.DataFrame:
        return scoring.leaderboard(tally, bootstrap=bootstrap, seed=seed, elo=pd.Series(dtype=float))

    models, pairs, y, counts = scoring._matchups(tally)
    return fit_matchups(models, pairs, y, counts, half_width=half_width, confirm=full_board if bootstrap else None)


def fit_matchups(
    models: Sequence[str],
    pairs: np.ndarray,
    y: np.ndarray,
    counts: np.ndarray,
    *,
    half_width: float | None = None,
    confirm: Callable[[], pd.DataFrame] | None = None,
) -> Fit:
    """`fit` from `scoring._matchups`' arrays: models, (i, j) rows, outcome for i (1, 0.5, 0) and counts.

    `confirm` gives the full board (with bootstrap intervals), called only when the posterior's say "settled".
    """
    m = len(models)
    r = scoring._fit(pairs, y, counts, m, posterior.PRIOR_L2)[0] if m else np.zeros(0)
    c = posterior.contrast(m)
    cov = c @ posterior.covariance(pairs, counts, r, m) @ c.T
    games = np.zeros((m, m))
    np.add.at(games, (pairs[:, 0], pairs[:, 1]), counts)
    games = games + games.T
    battles = games.sum(1)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    elo = scoring.INIT + posterior.ELO_PER_UNIT * r
    half = scoring.Z95 * posterior.ELO_PER_UNIT * sd
    best = np.argsort(-elo, kind="stable")
    names = [models[k] for k in best]
    columns = {"rating": elo[best], "lower": (elo - half)[best], "upper": (elo + half)[best], "battles": battles[best]}
    board = pd.DataFrame({"model": pd.Series(names, dtype=object), **columns})
    rule = rule_of(names, *columns.values(), half_width=half_width)
    if rule.settled and confirm is not None:
        board = confirm()
        rule = stopping_rule(board, half_width=half_width)
    return Fit(tuple(models), r, cov, battles, games, board, rule)


def _key(a: str, b: str) -> Pair:
    return (a, b) if a <= b else (b, a)


def _objective(sd: np.ndarray, gap: np.ndarray, half_width: float | None) -> np.ndarray:
    """(facing half-widths / gap)^2 per open neighbour pair, or (widest half-width / target)^2 when smaller.

    `sd` has shape (..., pairs, 2): the standard deviations of the higher and the lower contestant.
    """
    z = scoring.Z95
    rho = (z * (sd[..., 0] + sd[..., 1]) / gap) ** 2
    if half_width:
        rho = np.minimum(rho, (z * sd.max(-1) / half_width) ** 2)
    return rho.sum(-1)


def information_gain(state: Fit, pairs: Sequence[Pair], half_width: float | None = None) -> np.ndarray:
    """For each pair (both contestants in the fit), how much one vote on it would lower the stopping rule's
    open objective (see the module docstring): 0 when nothing is open."""
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
    sx = x @ state.cov  # (pairs, models): cov x for each candidate
    shrink = w[:, None] * sx**2 / (1.0 + w * np.einsum("pm,pm->p", sx, x))[:, None]
    var = np.diag(state.cov)
    before = np.sqrt(var)[np.stack([hi, lo], -1)]
    after = np.sqrt(np.clip(var[None, :] - shrink, 1e-12, None))[:, np.stack([hi, lo], -1)]
    return np.clip(_objective(before, gap, target) - _objective(after, gap, target), 0.0, None)


def _placement(state: Fit, pairs: Sequence[Pair], new: set[str]) -> np.ndarray:
    """Chances for pairs that place a new contestant: opponents from the least played part of the rating range."""
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
    parts = [(FLOOR, np.ones(len(pairs))), (PLACEMENT if new else 0.0, _placement(state, pairs, new))]
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
