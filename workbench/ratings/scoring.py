"""Rating maths for pairwise human votes and Likert scores: pure numpy/pandas, no model, no database.

Battles are a DataFrame in FastChat's clean-battle form: `model_a`, `model_b`, `winner` in model_a | model_b |
tie | "tie (bothbad)" (model_a is the output shown on the left), optionally `judge` and `tstamp`. The store's
`Store.battles()` returns exactly that and `load_battles(path)` reads FastChat's own JSON or JSONL files.
A battles frame may also be a tally: an `n` column says how many identical battles each row stands for (the
store's `vote_tallies()`, counted in the database); every function here weighs rows by it and gives exactly what
the battles one by one would give, except online Elo, which needs the votes in order (`leaderboard(elo=...)`).

    board = leaderboard(battles, bootstrap=1000, seed=0)    # rating, 95% interval, rank, online Elo, counts
    win_rate_matrix(battles); battle_counts(battles); position_bias(battles)
    likert_summary(store.likert()); agreement(pairwise_labels(battles))

Bradley-Terry is fitted the way FastChat's elo_analysis does it: a logistic model of P(a beats b) =
1 / (1 + base^((R_b - R_a) / scale)), a tie counting as half a win for each side, on the Elo scale (400,
base 10) with the mean (or a chosen model) at 1000. The leaderboard adds a weak prior (1000 +- 200 before any vote,
`workbench.ratings.posterior`) and takes the wider of the posterior's and the bootstrap's 95% intervals, so a few
votes show wide intervals, never 1,735 vs 265 with zero width. Ranks account
for overlapping intervals: a model's rank is 1 + the number of models whose lower bound is above its upper bound.
Agreement between raters (Cohen's kappa, Krippendorff's alpha) lives in `workbench.ratings.agreement`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError
from workbench.jsonl import iter_json_lines, read_text
from workbench.ratings import posterior
from workbench.ratings.posterior import PRIOR_L2

WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
SCALE, BASE, INIT = 400.0, 10.0, 1000.0
Z95 = 1.959963984540054
MIN_VOTES = 10  # below this many battles a model's place is marked "too few votes"
TOO_FEW = "too few votes"


# --- reading and checking battles -----------------------------------------------------------------------------


def _check_record(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise WorkbenchError(f"{where} must be a JSON object with model_a, model_b and winner.")
    a, b, winner = record.get("model_a"), record.get("model_b"), record.get("winner")
    if not isinstance(a, str) or not a or not isinstance(b, str) or not b:
        raise WorkbenchError(f"{where} needs model_a and model_b as non-empty text.")
    if a == b:
        raise WorkbenchError(f"{where} has the same model on both sides ({a!r}).")
    if winner not in WINNERS:
        raise WorkbenchError(f"{where} has winner {winner!r}; it must be one of {', '.join(WINNERS)}.")
    return record


def load_battles(path: str | Path) -> pd.DataFrame:
    """Battles from a FastChat clean-battle file: a JSON array (as clean_battle_data.py writes) or JSONL.

    A bad line raises WorkbenchError naming the file and the line (or the record, in a JSON array).
    """
    path = Path(path)
    text = read_text(path, "battle file")
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkbenchError(f"Line {exc.lineno} of {path.name} is not valid JSON ({exc.msg}).") from None
        records = [_check_record(r, f"Record {i + 1} of {path.name}") for i, r in enumerate(data)]
    else:
        records = [_check_record(r, f"Line {n} of {path.name}") for n, r in iter_json_lines(path, "battle file")]
    if not records:
        raise WorkbenchError(f"{path.name} has no battles.")
    return pd.DataFrame.from_records(records)


def check_battles(battles: pd.DataFrame) -> pd.DataFrame:
    """Validate a battles DataFrame; returns it sorted by tstamp when it has one (the order online Elo uses)."""
    missing = {"model_a", "model_b", "winner"} - set(battles.columns)
    if missing:
        raise WorkbenchError(
            f"Battles need the columns model_a, model_b and winner; missing {', '.join(sorted(missing))}."
        )
    if "n" in battles.columns and (battles["n"] < 0).any():
        raise WorkbenchError("A tally's counts (column n) must be 0 or more.")
    bad = ~battles["winner"].isin(WINNERS)
    if bad.any():
        raise WorkbenchError(
            f"Battle winner {battles.loc[bad, 'winner'].iloc[0]!r} is not one of {', '.join(WINNERS)}."
        )
    if "tstamp" in battles.columns:
        battles = battles.sort_values("tstamp", kind="stable")
    return battles.reset_index(drop=True)


# --- Bradley-Terry --------------------------------------------------------------------------------------------


def weights(battles: pd.DataFrame) -> np.ndarray:
    """How many battles each row stands for: its `n` in a tally, else 1."""
    if "n" in battles.columns:
        return battles["n"].to_numpy(dtype=np.int64)
    return np.ones(len(battles), dtype=np.int64)


def fit_weights(battles: pd.DataFrame) -> np.ndarray:
    """What each row weighs in the fit: its `weight` where a cap on raters set one
    (`workbench.ratings.raters.capped`), else its votes (`weights`)."""
    if "weight" in battles.columns:
        return battles["weight"].to_numpy(dtype=np.float64)
    return weights(battles).astype(np.float64)


def matchup_rows(battles: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Models (sorted), the distinct (a, b, outcome) rows (outcome 2: a won, 1: a tie, 0: b won) and which of
    them each row of `battles` is."""
    models = sorted(pd.unique(battles[["model_a", "model_b"]].to_numpy().ravel()).tolist())
    index = {m: i for i, m in enumerate(models)}
    outcome = np.select([battles["winner"] == "model_a", battles["winner"] == "model_b"], [2, 0], default=1)
    rows = np.column_stack([battles["model_a"].map(index), battles["model_b"].map(index), outcome]).astype(np.int64)
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    return models, unique, inverse.ravel()


def _matchups(battles: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Models, and the unique (a, b, outcome) rows with their counts (weights, under a cap): what the likelihood
    needs.

    The same arrays, in the same (sorted) order, whether the battles come one by one or as a tally, so the
    fit and a seeded bootstrap agree exactly between the two.
    """
    models, unique, inverse = matchup_rows(battles)
    counts = np.bincount(inverse, weights=fit_weights(battles), minlength=len(unique))
    keep = counts > 0
    return models, unique[keep, :2], unique[keep, 2] / 2.0, counts[keep].astype(np.float64)


def _fit(pairs: np.ndarray, y: np.ndarray, weights: np.ndarray, n_models: int, l2: float) -> np.ndarray:
    """Penalised logistic Bradley-Terry by Newton's method, for many weight vectors at once.

    Why not scipy or sklearn (as FastChat uses): neither is a dependency here, and the problem is small and
    concave, so Newton's method on the natural-log-odds ratings converges in a handful of steps and is exact.
    A tiny L2 penalty keeps ratings finite when a model never lost (the MLE is then infinite); the `11^T/m`
    term fixes the free shift so the system is solvable with l2 = 0. Rows of `weights` are bootstrap samples.

    Returns ratings (natural log-odds units, mean zero) with shape (len(weights), n_models).
    """
    weights = np.atleast_2d(weights)
    x = np.zeros((len(pairs), n_models))
    x[np.arange(len(pairs)), pairs[:, 0]] = 1.0
    x[np.arange(len(pairs)), pairs[:, 1]] = -1.0
    r = np.zeros((len(weights), n_models))
    shift = np.full((n_models, n_models), 1.0 / n_models)

    def objective(r: np.ndarray) -> np.ndarray:
        z = r @ x.T
        loglik = weights * (y * -np.logaddexp(0, -z) + (1 - y) * -np.logaddexp(0, z))
        return loglik.sum(1) - 0.5 * l2 * (r**2).sum(1)

    current = objective(r)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(r @ x.T)))
        grad = (weights * (y - p)) @ x - l2 * r
        curvature = np.einsum("ru,ui,uj->rij", weights * p * (1 - p), x, x) + l2 * np.eye(n_models) + shift
        try:
            step = np.linalg.solve(curvature, grad[..., None])[..., 0]
        except np.linalg.LinAlgError:  # models in groups that never met, and no penalty: least-squares step
            step = (np.linalg.pinv(curvature) @ grad[..., None])[..., 0]
        size = np.ones(len(r))
        for _ in range(30):  # halve the step where it does not improve the objective
            trial = r + size[:, None] * step
            better = objective(trial) >= current - 1e-12
            if better.all():
                break
            size = np.where(better, size, size / 2)
        r, current = trial, objective(trial)
        if np.abs(size[:, None] * step).max() < 1e-10:
            break
    return r - r.mean(1, keepdims=True)


def _to_elo(r: np.ndarray, models: list[str], anchor: str | None, anchor_rating: float) -> np.ndarray:
    elo = INIT + SCALE * r / math.log(BASE)
    if anchor is not None:
        if anchor not in models:
            raise WorkbenchError(f"The anchor model {anchor!r} is not in the battles.")
        elo = elo + (anchor_rating - elo[..., [models.index(anchor)]])
    else:
        elo = elo + (anchor_rating - INIT)
    return elo


def bradley_terry(
    battles: pd.DataFrame, *, anchor: str | None = None, anchor_rating: float = INIT, l2: float = 1e-4
) -> pd.Series:
    """Bradley-Terry ratings on the Elo scale, best first (mean at `anchor_rating`, or `anchor` there).

    Ties (and "both bad") count as half a win for each side, as in FastChat. `l2` is the penalty on natural
    log-odds ratings (0 gives the plain MLE, which is infinite for a model that never lost).
    """
    battles = check_battles(battles)
    if battles.empty:
        return pd.Series(dtype=float)
    models, pairs, y, counts = _matchups(battles)
    r = _fit(pairs, y, counts, len(models), l2)[0]
    return pd.Series(_to_elo(r, models, anchor, anchor_rating), index=models).sort_values(ascending=False)


def bootstrap_bradley_terry(
    battles: pd.DataFrame,
    rounds: int = 1000,
    *,
    seed: int | None = 0,
    anchor: str | None = None,
    anchor_rating: float = INIT,
    l2: float = 1e-4,
) -> pd.DataFrame:
    """Bradley-Terry ratings of `rounds` resamples of the battles (with replacement), one row per round.

    Resampling draws the counts of each distinct (a, b, outcome) from a multinomial, which is the same as
    resampling battles and is how FastChat does it; `seed` makes it repeatable.
    """
    battles = check_battles(battles)
    models, pairs, y, counts = _matchups(battles)
    rng = np.random.default_rng(seed)
    # Under a cap on raters (fractional weights) this resamples the effective number of votes.
    samples = rng.multinomial(max(1, round(counts.sum())), counts / counts.sum(), size=rounds).astype(np.float64)
    ratings = np.concatenate(
        [_fit(pairs, y, chunk, len(models), l2) for chunk in np.array_split(samples, 1 + rounds // 200)]
    )
    return pd.DataFrame(_to_elo(ratings, models, anchor, anchor_rating), columns=models)


def online_elo(battles: pd.DataFrame, *, k: float = 4.0, init: float = INIT) -> pd.Series:
    """FastChat's online Elo (K=4, scale 400, base 10) over the battles in time order, best first.

    Order-dependent, so shown for reference beside Bradley-Terry; a tally (with `n`) has no order and is refused.
    """
    if "n" in battles.columns:
        raise ValueError("Online Elo needs the battles in order, not a tally.")
    battles = check_battles(battles)
    # Integer codes and plain lists: the loop is inherently sequential, so keep each step cheap.
    codes, models = pd.factorize(battles[["model_a", "model_b"]].to_numpy().ravel())
    score = np.select([battles["winner"] == "model_a", battles["winner"] == "model_b"], [1.0, 0.0], default=0.5)
    ratings = [init] * len(models)
    for ia, ib, score_a in zip(codes[0::2].tolist(), codes[1::2].tolist(), score.tolist(), strict=True):
        ra, rb = ratings[ia], ratings[ib]
        expected_a = 1 / (1 + BASE ** ((rb - ra) / SCALE))
        ratings[ia] = ra + k * (score_a - expected_a)
        ratings[ib] = rb + k * ((1 - score_a) - (1 - expected_a))
    rating = dict(zip(models.tolist(), ratings, strict=True))
    return pd.Series(rating, dtype=float).sort_values(ascending=False)


def ranks_from_intervals(lower: pd.Series, upper: pd.Series) -> pd.Series:
    """Rank = 1 + the number of models whose lower bound is above this model's upper bound (LMArena's rule),
    so models whose intervals overlap share a rank."""
    lo = lower.to_numpy()
    return pd.Series(1 + (lo[None, :] > upper.to_numpy()[:, None]).sum(1), index=upper.index)


def record_counts(battles: pd.DataFrame) -> pd.DataFrame:
    """Per model: battles, wins, losses, ties (both-bad included in ties)."""
    battles = check_battles(battles)
    n = weights(battles)
    rows = []
    for side, other in (("model_a", "model_b"), ("model_b", "model_a")):
        rows.append(
            pd.DataFrame(
                {
                    "model": battles[side],
                    "wins": (battles["winner"] == side) * n,
                    "losses": (battles["winner"] == other) * n,
                    "ties": battles["winner"].isin(["tie", "tie (bothbad)"]) * n,
                }
            )
        )
    table = pd.concat(rows).groupby("model").sum().astype(int)
    table.insert(0, "battles", table.sum(axis=1))
    return table


def leaderboard(
    battles: pd.DataFrame,
    *,
    bootstrap: int = 1000,
    seed: int | None = 0,
    anchor: str | None = None,
    l2: float = PRIOR_L2,
    elo: pd.Series | None = None,
) -> pd.DataFrame:
    """The leaderboard, best first: model, rating (Bradley-Terry), lower/upper (95% interval), rank
    (interval-aware), elo (online, for reference), battles, wins, losses, ties, win_rate, note.

    Ratings are the posterior mode under a weak prior (`workbench.ratings.posterior`: 1000 +- 200 points before
    any vote), so two votes cannot put two models 1,500 points apart. The interval is the wider of the posterior's
    normal interval and, with `bootstrap` > 0, the bootstrap percentile interval (FastChat's): a bootstrap of a few
    identical votes has zero width, the posterior's interval never does. `note` says "too few votes" for a model
    with fewer than MIN_VOTES battles. `elo` gives the online Elo column (a tally has no order to compute it
    from; NaN when not given).
    """
    battles = check_battles(battles)
    columns = [
        "model",
        "rating",
        "lower",
        "upper",
        "rank",
        "elo",
        "battles",
        "wins",
        "losses",
        "ties",
        "win_rate",
        "note",
    ]
    if battles.empty:
        return pd.DataFrame(columns=columns)
    models, pairs, y, counts = _matchups(battles)
    r = _fit(pairs, y, counts, len(models), l2)[0]
    at = models.index(anchor) if anchor is not None and anchor in models else None
    board = pd.DataFrame({"rating": _to_elo(r, models, anchor, INIT)}, index=models)
    sd = posterior.centred_sd(posterior.covariance(pairs, counts, r, len(models), l2), at) * posterior.ELO_PER_UNIT
    board["lower"], board["upper"] = board["rating"] - Z95 * sd, board["rating"] + Z95 * sd
    if bootstrap > 0:
        samples = bootstrap_bradley_terry(battles, bootstrap, seed=seed, anchor=anchor, l2=l2)
        board["lower"] = np.minimum(board["lower"], samples.quantile(0.025))
        board["upper"] = np.maximum(board["upper"], samples.quantile(0.975))
    board = board.sort_values("rating", ascending=False, kind="stable")
    board["rank"] = ranks_from_intervals(board["lower"], board["upper"])
    board["elo"] = elo if elo is not None else online_elo(battles) if "n" not in battles.columns else math.nan
    board = board.join(record_counts(battles))
    board["win_rate"] = (board["wins"] + 0.5 * board["ties"]) / board["battles"]
    board["note"] = np.where(board["battles"] < MIN_VOTES, TOO_FEW, "")
    return board.rename_axis("model").reset_index()[columns]


# --- tables for the dashboard ---------------------------------------------------------------------------------


def win_rate_matrix(battles: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """Fraction of battles the row model won against the column model (ties count as not won), as FastChat
    computes it; NaN where two models never met. `order` defaults to the average win rate, best first."""
    battles = check_battles(battles)
    n = weights(battles)
    a_wins = pd.crosstab(
        battles["model_a"], battles["model_b"], values=(battles["winner"] == "model_a") * n, aggfunc="sum"
    )
    b_wins = pd.crosstab(
        battles["model_a"], battles["model_b"], values=(battles["winner"] == "model_b") * n, aggfunc="sum"
    )
    models = sorted(set(battles["model_a"]) | set(battles["model_b"]))
    a_wins = a_wins.reindex(index=models, columns=models).fillna(0)
    b_wins = b_wins.reindex(index=models, columns=models).fillna(0)
    counts = battle_counts(battles).reindex(index=models, columns=models)
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = (a_wins + b_wins.T) / counts.replace(0, np.nan)
    if order is None:
        order = matrix.mean(axis=1).sort_values(ascending=False).index.tolist()
    return matrix.loc[order, order]


def battle_counts(battles: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """Symmetric table of how many battles each pair of models had."""
    battles = check_battles(battles)
    models = sorted(set(battles["model_a"]) | set(battles["model_b"]))
    table = pd.crosstab(battles["model_a"], battles["model_b"], values=weights(battles), aggfunc="sum")
    table = table.reindex(index=models, columns=models).fillna(0)
    table = (table + table.T).astype(int)
    return table.loc[order, order] if order is not None else table


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (sound for small n and for proportions near 0 or 1)."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def position_bias(battles: pd.DataFrame) -> dict[str, float]:
    """How often the left output (model_a) won among decisive votes, with a 95% Wilson interval.

    An interval that excludes 0.5 means raters favour one side. Returns left_wins, decisive, ties, rate,
    lower, upper.
    """
    battles = check_battles(battles)
    n = weights(battles)
    left = int(((battles["winner"] == "model_a") * n).sum())
    decisive = int((battles["winner"].isin(["model_a", "model_b"]) * n).sum())
    lower, upper = wilson_interval(left, decisive)
    return {
        "left_wins": left,
        "decisive": decisive,
        "ties": int(n.sum()) - decisive,
        "rate": left / decisive if decisive else math.nan,
        "lower": lower,
        "upper": upper,
    }


def likert_summary(
    likert: pd.DataFrame, *, by: str = "model", bootstrap: int = 1000, seed: int | None = 0
) -> pd.DataFrame:
    """Mean Likert score per model with a 95% bootstrap (percentile) interval, best first.

    Columns: model, mean, lower, upper, n, sd. Percentile intervals need no t table and suit a bounded
    1-5 scale better than mean +- 1.96 sd.
    """
    if likert.empty:
        return pd.DataFrame(columns=[by, "mean", "lower", "upper", "n", "sd"])
    rng = np.random.default_rng(seed)
    rows = []
    for model, scores in likert.groupby(by)["score"]:
        values = scores.to_numpy(dtype=float)
        means = rng.choice(values, size=(bootstrap, len(values))).mean(1) if bootstrap else values.mean(keepdims=True)
        rows.append(
            {
                by: model,
                "mean": values.mean(),
                "lower": float(np.quantile(means, 0.025)),
                "upper": float(np.quantile(means, 0.975)),
                "n": len(values),
                "sd": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            }
        )
    return pd.DataFrame(rows).sort_values("mean", ascending=False, ignore_index=True)
