"""Each rater's weight on the leaderboard: the cap on what one visitor counts for, votes per rater, and raters whose
votes disagree with everyone else's far beyond chance.

    tally = capped(tally, cap=10)            # a `weight` column: what each row counts for in the fit
    table = rater_table(tally, dropped={"anon-1f2e..."}, cap=10)
    table[["rater", "votes", "counted", "share", "dropped", "against", "expected", "p_value", "flagged"]]

The cap. In an open Arena each battle is a new pair of outputs, so "one ballot per rater and pair" never stops a
visitor from voting for the same side again and again. A visitor's votes on one pair of contestants (two
checkpoints, two settings) are not independent evidence: they are one person's taste, or one person's intent. So
one visitor's votes on one pair of contestants count for at most `cap` votes in the Bradley-Terry fit (each of their
n votes there weighs cap/n when n > cap): a steering visitor moves a rating as far as `cap` honest votes could and no
further, while a visitor who votes less than the cap counts fully. This is Kish's design effect taken to its limit:
n votes clustered in one rater carry at most 1/rho independent votes' worth when their correlation is rho; the cap is
that bound, and WORKBENCH_RATER_CAP chooses it. It applies to raters a visitor gets (anonymous voter ids and Hugging
Face logins, `workbench.store.is_visitor`); a name typed on the dashboard is the owner's own (only the owner may type
one) and an LLM judge is the owner's run, so they count in full. The counts shown (battles, wins) stay the votes
cast; the fit, its intervals and the stopping rule use the weights.

Outliers. Chatbot Arena's paper (Chiang et al. 2024, "Detecting anomalous users") tests each user's votes against
what the other users' votes predict and combines the evidence over the user's votes with a threshold that accounts for
testing many users. Here, for each rater with at least MIN_TESTED decisive votes: the leaderboard is fitted without
them (the same prior and cap, dropped raters left out), and each of their decisive votes either agrees with that fit's
favourite or goes against it; under the null (the rater votes like everyone else, independently) the number of votes
against the favourite is a sum of independent Bernoullis with p = the underdog's chance in that fit (a Poisson-binomial
distribution), so the p-value is its exact upper tail (normal beyond EXACT_UP_TO votes). Holm's step-down procedure
over all tested raters keeps the chance of flagging any honest rater at or below `alpha` (0.05). A flag is for the
owner to look at (votes per rater, on the Leaderboard page), not an automatic drop: a rater with a real, different
taste looks the same. Ties are not tested; votes on a contestant nobody else rated carry no evidence and are skipped.
Pure numpy/pandas; torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from workbench.ratings import scoring
from workbench.ratings.posterior import PRIOR_L2
from workbench.store.records import is_visitor

MIN_TESTED = 5  # decisive votes a rater needs before their agreement is tested
ALPHA = 0.05  # the family-wise error rate of the flags (Holm)
EXACT_UP_TO = 5000  # votes up to which the Poisson-binomial tail is exact (O(n^2)); a normal tail beyond
RATER_COLUMNS = ["rater", "votes", "pairs", "counted", "share", "dropped", "tested", "against", "expected", "p_value"]
RATER_COLUMNS += ["flagged"]


def _rater_column(frame: pd.DataFrame) -> str:
    return "judge" if "judge" in frame.columns else "rater"


def _pair_keys(frame: pd.DataFrame) -> pd.Series:
    """The unordered pair of contestants of each row ("a\\x00b" with a < b)."""
    a, b = frame["model_a"].astype(str), frame["model_b"].astype(str)
    return a.where(a < b, b) + "\x00" + b.where(a < b, a)


def capped(frame: pd.DataFrame, cap: int) -> pd.DataFrame:
    """Battles or a tally with a `weight` column: each visitor's votes on one pair of contestants weigh at most
    `cap` in all (see the module docstring); everyone else's weigh their votes. `cap` 0: `frame` as it is.

    Args:
        frame: Battles or a tally (`n`) with a `judge` column, grouped by what is ranked (`leaderboard.contestants`).
        cap: The most one visitor's votes on one pair of contestants count for (WORKBENCH_RATER_CAP).
    """
    if not cap or frame.empty or _rater_column(frame) not in frame.columns:
        return frame
    raters = frame[_rater_column(frame)]
    votes = pd.Series(scoring.weights(frame), index=frame.index, dtype=np.float64)
    per_pair = votes.groupby([raters, _pair_keys(frame)]).transform("sum")
    visitors = raters.isin([r for r in pd.unique(raters) if is_visitor(r)])
    scale = np.where(visitors & (per_pair > cap), cap / per_pair.where(per_pair > 0, 1.0), 1.0)
    out = frame.copy()
    out["weight"] = votes.to_numpy() * scale
    return out


def _upper_tail(q: np.ndarray, observed: int) -> float:
    """P(sum of Bernoulli(q_i) >= observed): exact by convolution up to EXACT_UP_TO terms, else a normal tail with
    a continuity correction."""
    if observed <= 0:
        return 1.0
    if len(q) <= EXACT_UP_TO:
        dist = np.zeros(len(q) + 1)
        dist[0] = 1.0
        for k, p in enumerate(q, start=1):
            dist[1 : k + 1] = dist[1 : k + 1] * (1 - p) + dist[:k] * p
            dist[0] *= 1 - p
        return float(min(1.0, dist[observed:].sum()))
    mean, var = float(q.sum()), float((q * (1 - q)).sum())
    if var <= 0:
        return 0.0 if observed > mean else 1.0
    return 0.5 * math.erfc((observed - 0.5 - mean) / math.sqrt(2 * var))


def holm(p_values: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Holm's step-down rejections: which of these hypotheses are rejected with family-wise error <= alpha."""
    order = np.argsort(p_values, kind="stable")
    rejected = np.zeros(len(p_values), dtype=bool)
    for rank, k in enumerate(order):
        if p_values[k] > alpha / (len(p_values) - rank):
            break
        rejected[k] = True
    return rejected


def _leave_one_out(frame: pd.DataFrame, dropped: frozenset[str]):
    """(models, distinct rows, rater names, raw votes per rater and row, each rater's leave-one-out ratings)."""
    models, unique, inverse = scoring.matchup_rows(frame)
    names, codes = np.unique(frame[_rater_column(frame)].astype(str).to_numpy(), return_inverse=True)
    cells = codes * len(unique) + inverse
    shape = (len(names), len(unique))
    votes = np.bincount(cells, weights=scoring.weights(frame), minlength=shape[0] * shape[1]).reshape(shape)
    counted = np.bincount(cells, weights=scoring.fit_weights(frame), minlength=votes.size).reshape(shape)
    counted[np.isin(names, list(dropped))] = 0.0  # a dropped rater is nobody's "everyone else"
    others = counted.sum(0, keepdims=True) - counted
    ratings = scoring._fit(unique[:, :2], unique[:, 2] / 2.0, others, len(models), PRIOR_L2)
    return models, unique, names, votes, others, ratings


def outliers(frame: pd.DataFrame, *, dropped: Iterable[str] = (), alpha: float = ALPHA) -> pd.DataFrame:
    """Each rater's decisive votes against the leaderboard fitted without them, with a p-value and Holm's flag.

    Args:
        frame: Battles or a tally (with `judge`, and `weight` under a cap), grouped by what is ranked.
        dropped: Raters the owner dropped: tested too, but left out of everyone else's fit.
        alpha: Family-wise error rate of the flags over all tested raters.

    Returns:
        rater, tested (decisive votes on contestants others rated), against (votes for the side the others' fit
        favours less), expected (its mean under the null), p_value (NaN: fewer than MIN_TESTED), flagged.
    """
    columns = ["rater", "tested", "against", "expected", "p_value", "flagged"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    models, unique, names, votes, others, ratings = _leave_one_out(frame, frozenset(dropped))
    a, b, outcome = unique[:, 0], unique[:, 1], unique[:, 2]
    decisive = outcome != 1
    rows = []
    for k, name in enumerate(names):
        seen = np.zeros(len(models))
        np.add.at(seen, a, others[k])
        np.add.at(seen, b, others[k])
        usable = decisive & (votes[k] > 0) & (seen[a] > 0) & (seen[b] > 0)
        p_a = 1.0 / (1.0 + np.exp(ratings[k, b] - ratings[k, a]))  # the others' chance that a beats b
        underdog = np.minimum(p_a, 1 - p_a)
        chose_underdog = np.where(outcome == 2, p_a < 0.5, p_a > 0.5)
        n = votes[k][usable].round().astype(np.int64)
        q = np.repeat(underdog[usable], n)
        against = int(n[chose_underdog[usable]].sum())
        tested = int(n.sum())
        p_value = _upper_tail(q, against) if tested >= MIN_TESTED else math.nan
        rows.append((str(name), tested, against, float(q.sum()), p_value))
    table = pd.DataFrame(rows, columns=columns[:-1])
    table["flagged"] = False
    tested = table["p_value"].notna().to_numpy()
    if tested.any():
        table.loc[tested, "flagged"] = holm(table.loc[tested, "p_value"].to_numpy(), alpha)
    return table


def rater_table(frame: pd.DataFrame, *, dropped: Iterable[str] = (), cap: int = 0) -> pd.DataFrame:
    """Votes per rater for the owner: votes cast, pairs of contestants voted on, what they count for in the fit
    (under the cap; 0 when dropped) and their share of it, and the outlier test (`outliers`), most votes first.

    Args:
        frame: Battles or a tally with `judge`, every rater's (dropped ones too), grouped by what is ranked.
        dropped: Raters the owner dropped.
        cap: WORKBENCH_RATER_CAP (0: no cap).
    """
    if frame.empty:
        return pd.DataFrame(columns=RATER_COLUMNS)
    dropped = frozenset(dropped)
    frame = capped(frame, cap)
    column = _rater_column(frame)
    raters = frame[column].astype(str)
    counted = pd.Series(scoring.fit_weights(frame), index=frame.index).where(~raters.isin(dropped), 0.0)
    table = pd.DataFrame(
        {
            "votes": pd.Series(scoring.weights(frame), index=frame.index).groupby(raters).sum(),
            "pairs": _pair_keys(frame).groupby(raters).nunique(),
            "counted": counted.groupby(raters).sum(),
        }
    )
    total = table["counted"].sum()
    table["share"] = table["counted"] / total if total else 0.0
    table["dropped"] = table.index.isin(dropped)
    table = table.rename_axis("rater").reset_index()
    table = table.merge(outliers(frame, dropped=dropped), on="rater", how="left")
    table["flagged"] = table["flagged"].fillna(False).astype(bool)
    return table.sort_values(["flagged", "votes"], ascending=[False, False], ignore_index=True)[RATER_COLUMNS]
