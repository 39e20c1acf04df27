"""Everything the Leaderboard page shows, computed from the store's ratings for a chosen filter.

Pure pandas over `Store.battles()` and `Store.likert()`, with the maths from `workbench.ratings.scoring` and
`workbench.ratings.agreement`. Torch-free.

    battles, likert = store.battles(), store.likert()
    options = filter_options(battles, likert)                      # raters, checkpoints, settings labels
    board = standings(filter_ratings(battles, raters=["alice"]), filter_ratings(likert, raters=["alice"]))
    board.board; board.matrix; board.counts; board.bias; board.likert; board.agreement

A rating's settings label is `workbench.store.settings_label` of the generation settings behind it (for a vote
between outputs made with different settings, both labels joined with " | ").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from workbench.ratings import agreement, scoring
from workbench.store import settings_label


@dataclass
class Standings:
    """The leaderboard's tables for one selection of ratings.

    Attributes:
        votes: Pairwise votes counted.
        scores: Likert scores counted.
        board: `scoring.leaderboard` (model, rating, lower, upper, rank, elo, battles, wins, losses, ties, win_rate).
        matrix: Win-rate matrix (row beat column), models in board order.
        counts: Battles per pair of models, same order.
        bias: `scoring.position_bias` (left_wins, decisive, ties, rate, lower, upper), or None without votes.
        likert: `scoring.likert_summary` (model, mean, lower, upper, n, sd).
        agreement: Pairwise votes' agreement between raters on shared items (items, raters, alpha, kappa).
        likert_agreement: The same for Likert scores (interval Krippendorff's alpha).
    """

    votes: int
    scores: int
    board: pd.DataFrame
    matrix: pd.DataFrame = field(default_factory=pd.DataFrame)
    counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    bias: dict[str, float] | None = None
    likert: pd.DataFrame = field(default_factory=pd.DataFrame)
    agreement: dict[str, Any] = field(default_factory=dict)
    likert_agreement: dict[str, Any] = field(default_factory=dict)


def _label(settings: Any) -> str:
    return settings_label(settings) if isinstance(settings, dict) else "unknown settings"


def settings_labels(frame: pd.DataFrame) -> pd.Series:
    """The settings label of each row of a battles frame (settings_a/settings_b) or a Likert frame (settings)."""
    if frame.empty:
        return pd.Series([], dtype=object, index=frame.index)
    if "settings" in frame.columns:
        return frame["settings"].map(_label)
    a, b = frame["settings_a"].map(_label), frame["settings_b"].map(_label)
    return a.where(a == b, a + " | " + b)


def _models(frame: pd.DataFrame) -> set[str]:
    if frame.empty:
        return set()
    if "model" in frame.columns:
        return set(frame["model"])
    return set(frame["model_a"]) | set(frame["model_b"])


def _raters(frame: pd.DataFrame) -> set[str]:
    return set(frame["rater" if "rater" in frame.columns else "judge"]) if len(frame) else set()


def filter_options(battles: pd.DataFrame, likert: pd.DataFrame) -> dict[str, list[str]]:
    """What the filters can offer: raters, checkpoints and settings labels present in the ratings, sorted."""
    return {
        "raters": sorted(_raters(battles) | _raters(likert)),
        "checkpoints": sorted(_models(battles) | _models(likert)),
        "settings": sorted(set(settings_labels(battles)) | set(settings_labels(likert))),
    }


def filter_ratings(
    frame: pd.DataFrame,
    *,
    raters: Iterable[str] | None = None,
    checkpoints: Iterable[str] | None = None,
    settings: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Battles or Likert scores limited to the given raters, checkpoints (both sides of a battle) and settings
    labels; None (or empty) means no limit on that field."""
    if frame.empty:
        return frame
    keep = pd.Series(True, index=frame.index)
    if raters:
        keep &= frame["rater" if "rater" in frame.columns else "judge"].isin(list(raters))
    if checkpoints:
        names = list(checkpoints)
        if "model" in frame.columns:
            keep &= frame["model"].isin(names)
        else:
            keep &= frame["model_a"].isin(names) & frame["model_b"].isin(names)
    if settings:
        keep &= settings_labels(frame).isin(list(settings))
    return frame[keep].reset_index(drop=True)


def standings(battles: pd.DataFrame, likert: pd.DataFrame, *, bootstrap: int = 1000, seed: int | None = 0) -> Standings:
    """Leaderboard, win rates, counts, position bias, Likert means and rater agreement for these ratings."""
    result = Standings(votes=len(battles), scores=len(likert), board=scoring.leaderboard(battles, bootstrap=0))
    if len(battles):
        result.board = scoring.leaderboard(battles, bootstrap=bootstrap, seed=seed)
        order = list(result.board["model"])
        result.matrix = scoring.win_rate_matrix(battles, order=order)
        result.counts = scoring.battle_counts(battles, order=order)
        result.bias = scoring.position_bias(battles)
        result.agreement = agreement.agreement(agreement.pairwise_labels(battles))
    if len(likert):
        result.likert = scoring.likert_summary(likert, bootstrap=bootstrap, seed=seed)
        result.likert_agreement = agreement.agreement(agreement.likert_labels(likert), level="interval")
    return result
