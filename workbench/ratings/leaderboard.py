"""Everything the Leaderboard page shows, computed from the store's ratings for a chosen filter.

Pure pandas over `Store.battles()` and `Store.likert()`, with the maths from `workbench.ratings.scoring` and
`workbench.ratings.agreement`. Torch-free.

    battles, likert = store.battles(), store.likert()
    options = filter_options(battles, likert)          # raters, checkpoints, settings labels, backends
    board = standings(filter_ratings(battles, raters=["alice"]), filter_ratings(likert, raters=["alice"]))
    board.board; board.matrix; board.counts; board.bias; board.likert; board.agreement
    filter_ratings(battles, rater_kind="all")           # people's ratings only unless asked: humans, judges, all

A rating's settings label is `workbench.store.settings_label` of the generation settings behind it (for a vote
between outputs made with different settings, both labels joined with " | "). Every function here also takes the
store's tallies (`Store.vote_tallies()`, votes counted in the database, with an `n` column) and its slim vote
sequence (`Store.vote_sequence()`), which name settings by their label already; `standings(tally, likert,
sequence=...)` gives what `standings(battles, likert)` gives. `contestants(frame, by)` ranks checkpoints, settings,
or each checkpoint under each settings (`by="checkpoint" | "settings" | "both"`). Its backends are those that made
its outputs (`backend_a`/`backend_b` of a battle, `backend` of a Likert score), "unknown" where none was recorded
(ratings of outputs stored before backends were, or battles from a file without backend columns).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.ratings import agreement, scoring
from workbench.ratings.settle import Settlement, stopping_rule
from workbench.store import check_rater_kind, is_judge, settings_label

UNKNOWN_BACKEND = "unknown"  # the filter's name for outputs whose backend was not recorded
BY = ("checkpoint", "settings", "both")  # what a leaderboard ranks


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
        settlement: The stopping rule on these votes (`settle.stopping_rule`): is each pair of neighbours separated.
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
    settlement: Settlement | None = None


def _label(settings: Any) -> str:
    if isinstance(settings, str):  # a tally or sequence from the store names settings by their label already
        return settings
    return settings_label(settings) if isinstance(settings, dict) else "unknown settings"


def settings_labels(frame: pd.DataFrame) -> pd.Series:
    """The settings label of each row of a battles frame (settings_a/settings_b) or a Likert frame (settings)."""
    if frame.empty:
        return pd.Series([], dtype=object, index=frame.index)
    if "settings" in frame.columns:
        return frame["settings"].map(_label)
    a, b = frame["settings_a"].map(_label), frame["settings_b"].map(_label)
    return a.where(a == b, a + " | " + b)


def _backend_labels(column: pd.Series) -> pd.Series:
    return column.where(column.notna() & (column != ""), UNKNOWN_BACKEND).astype(object)


def _backend_columns(frame: pd.DataFrame) -> list[pd.Series]:
    """One series per side of a battle (backend_a, backend_b), or the one of a Likert frame (backend)."""
    names = ["backend"] if "model" in frame.columns else ["backend_a", "backend_b"]
    unknown = pd.Series(UNKNOWN_BACKEND, index=frame.index, dtype=object)
    return [_backend_labels(frame[n]) if n in frame.columns else unknown for n in names]


def backends_of(frame: pd.DataFrame) -> list[str]:
    """The backends behind a battles or Likert frame's ratings, sorted; "unknown" where none was recorded.

    Args:
        frame: `Store.battles()` (both sides count) or `Store.likert()`, filtered or not; any FastChat battle
            frame without backend columns counts as "unknown".

    Returns:
        The distinct backend names, e.g. ["llamacpp", "transformers", "unknown"]; [] for an empty frame.
    """
    if frame.empty:
        return []
    return sorted(set().union(*(set(column) for column in _backend_columns(frame))))


def _models(frame: pd.DataFrame) -> set[str]:
    if frame.empty:
        return set()
    if "model" in frame.columns:
        return set(frame["model"])
    return set(frame["model_a"]) | set(frame["model_b"])


def _raters(frame: pd.DataFrame) -> set[str]:
    return set(frame["rater" if "rater" in frame.columns else "judge"]) if len(frame) else set()


def filter_options(battles: pd.DataFrame, likert: pd.DataFrame) -> dict[str, list[str]]:
    """What the filters can offer: raters, checkpoints, settings labels and backends present in the ratings.

    Args:
        battles: `Store.battles()`.
        likert: `Store.likert()`.

    Returns:
        {"raters", "checkpoints", "settings", "backends"}, each a sorted list; outputs with no recorded backend
        appear as "unknown" among the backends.
    """
    return {
        "raters": sorted(_raters(battles) | _raters(likert)),
        "checkpoints": sorted(_models(battles) | _models(likert)),
        "settings": sorted(set(settings_labels(battles)) | set(settings_labels(likert))),
        "backends": sorted(set(backends_of(battles)) | set(backends_of(likert))),
    }


def _kind_mask(column: pd.Series, kind: str) -> pd.Series | None:
    """Which rows a rater kind keeps (None: all of them), deciding once per distinct name, not once per vote."""
    if kind == "all":
        return None
    judges = [name for name in pd.unique(column) if is_judge(name)]
    if kind == "humans":
        return ~column.isin(judges) if judges else None
    return column.isin(judges)


def filter_ratings(
    frame: pd.DataFrame,
    *,
    rater_kind: str = "humans",
    raters: Iterable[str] | None = None,
    checkpoints: Iterable[str] | None = None,
    settings: Iterable[str] | None = None,
    backends: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Battles or Likert scores limited to the given raters, checkpoints, settings labels and backends.

    Args:
        frame: `Store.battles()` or `Store.likert()` (or a FastChat battle frame).
        rater_kind: "humans" (the default: people's ratings only), "judges" (LLM judges', raters named
            "judge:<model>") or "all".
        raters: Keep ratings by these raters (a battle's judge).
        checkpoints: Keep battles whose both models, and Likert scores whose model, are among these.
        settings: Keep ratings whose settings label (see `settings_labels`) is among these.
        backends: Keep battles whose both outputs, and Likert scores whose output, were made by one of these
            backends; "unknown" stands for outputs with no recorded backend.

    Returns:
        The rows kept, re-indexed from 0. None (or empty) means no limit on that field. A frame without a rater
        column (a battle file without judges) holds people's ratings.
    """
    kind = check_rater_kind(rater_kind)
    if frame.empty:
        return frame
    keep = pd.Series(True, index=frame.index)
    column = "rater" if "rater" in frame.columns else "judge"
    if column in frame.columns:
        kept = _kind_mask(frame[column], kind)
        if kept is not None:
            keep &= kept
    elif kind == "judges":
        keep &= False
    if raters:
        keep &= frame[column].isin(list(raters))
    if checkpoints:
        names = list(checkpoints)
        if "model" in frame.columns:
            keep &= frame["model"].isin(names)
        else:
            keep &= frame["model_a"].isin(names) & frame["model_b"].isin(names)
    if settings:
        keep &= settings_labels(frame).isin(list(settings))
    if backends:
        names = list(backends)
        for column in _backend_columns(frame):
            keep &= column.isin(names)
    return frame[keep].reset_index(drop=True)


def contestants(frame: pd.DataFrame, by: str = "checkpoint") -> pd.DataFrame:
    """Battles (or a tally or sequence) with model_a/model_b naming what is ranked.

    Args:
        frame: `Store.battles()`, `Store.vote_tallies()`, `Store.vote_sequence()`, or a FastChat battle frame.
        by: "checkpoint" (as stored), "settings" (the settings label of each side) or "both"
            ("checkpoint · settings label").

    Returns:
        A copy with model_a/model_b renamed; battles between two equal contestants (same settings when ranking
        settings, same checkpoint when ranking checkpoints) say nothing about the ranking and are left out.
    """
    if by not in BY:
        raise WorkbenchError(f"A leaderboard ranks by {', '.join(BY)}, not {by!r}.")
    if by != "checkpoint" and len(frame) and not {"settings_a", "settings_b"} <= set(frame.columns):
        raise WorkbenchError("These battles have no settings_a/settings_b columns, so they cannot rank settings.")
    out = frame.copy()
    if len(frame) and by != "checkpoint":
        for side in ("a", "b"):
            label = frame[f"settings_{side}"].map(_label)
            out[f"model_{side}"] = label if by == "settings" else frame[f"model_{side}"] + " · " + label
    return out[out["model_a"] != out["model_b"]].reset_index(drop=True) if len(out) else out


def standings(
    battles: pd.DataFrame,
    likert: pd.DataFrame,
    *,
    bootstrap: int = 1000,
    seed: int | None = 0,
    sequence: pd.DataFrame | None = None,
    half_width: float | None = None,
) -> Standings:
    """Leaderboard, win rates, counts, position bias, Likert means, rater agreement and the stopping rule for these
    ratings.

    `battles` may be a tally (with `n`); then `sequence` (the same votes one by one, in order, as
    `Store.vote_sequence()` filtered alike) gives the online Elo and the agreement between raters. `half_width` is
    the stopping rule's target (WORKBENCH_SETTLE_HALF_WIDTH; None: separation only).
    """
    n_votes = int(scoring.weights(battles).sum())
    result = Standings(votes=n_votes, scores=len(likert), board=scoring.leaderboard(battles, bootstrap=0))
    if n_votes:
        ordered = sequence if "n" in battles.columns else battles
        elo = scoring.online_elo(ordered) if ordered is not None and len(ordered) else None
        result.board = scoring.leaderboard(battles, bootstrap=bootstrap, seed=seed, elo=elo)
        order = list(result.board["model"])
        result.matrix = scoring.win_rate_matrix(battles, order=order)
        result.counts = scoring.battle_counts(battles, order=order)
        result.bias = scoring.position_bias(battles)
        result.settlement = stopping_rule(battles, half_width=half_width)
        if ordered is not None and len(ordered):
            result.agreement = agreement.agreement(agreement.pairwise_labels(ordered))
    if len(likert):
        result.likert = scoring.likert_summary(likert, bootstrap=bootstrap, seed=seed)
        result.likert_agreement = agreement.agreement(agreement.likert_labels(likert), level="interval")
    return result


def win_rate_cells(matrix: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """The win-rate matrix as text for a table: "0.75 (4)" (win rate, battles), "never met" where two contestants
    have no battle, "" on the diagonal; never a missing cell.

    Args:
        matrix: `Standings.matrix` (row beat column; NaN where they never met).
        counts: `Standings.counts`, the same order.
    """
    cells = pd.DataFrame("", index=matrix.index, columns=matrix.columns, dtype=object)
    for row in matrix.index:
        for column in matrix.columns:
            if row == column:
                continue
            n = int(counts.loc[row, column]) if row in counts.index and column in counts.columns else 0
            rate = matrix.loc[row, column]
            cells.loc[row, column] = "never met" if not n or pd.isna(rate) else f"{rate:.2f} ({n})"
    return cells.rename_axis("model")
