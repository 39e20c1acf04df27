"""The stopping rule: is the leaderboard's order settled, and about how many more votes would settle it?

For each pair of neighbours on a leaderboard (`scoring.leaderboard`, best first) the rule asks whether their 95%
intervals are separated (the higher one's lower bound above the lower one's upper bound: the test the ranks use,
so "separated" is what the owner sees on the chart). A pair is settled when it is separated, or, with a half-width
target (`WORKBENCH_SETTLE_HALF_WIDTH`), when both intervals are narrower than it (a near-tie measured well enough);
the ranking is settled when every neighbour pair is and every contestant has MIN_VOTES battles.

    rule = stopping_rule(board, half_width=None)
    rule.settled; rule.votes; rule.votes_needed; rule.pairs     # one row per neighbour pair
    print(rule.summary())    # "Settled after 4,210 votes: every pair of neighbours is separated at 95%."

The votes still needed are an estimate: intervals narrow as 1 / sqrt(votes), so a pair whose intervals overlap
by a factor f = (half-widths facing each other) / gap needs about votes x (f^2 - 1) more, if votes keep arriving
as they have. Pure pandas over a board; the Leaderboard page, the CLI, the Arena and the benchmark all use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.ratings.scoring import MIN_VOTES

PAIR_COLUMNS = ["higher", "lower", "gap", "overlap", "separated", "settled", "votes_needed"]


@dataclass(frozen=True)
class Settlement:
    """The stopping rule's verdict on one leaderboard.

    Attributes:
        votes: Votes counted on the board.
        pairs: One row per neighbour pair, best first (columns PAIR_COLUMNS): higher, lower (the two contestants),
            gap (rating points between them), overlap (points by which their intervals overlap; negative when
            separated), separated, settled, votes_needed (0 when settled; inf when their ratings are equal).
        half_width: The owner's half-width target in rating points, or None.
        few: Contestants with fewer than MIN_VOTES battles.
    """

    votes: int
    pairs: pd.DataFrame
    half_width: float | None = None
    few: tuple[str, ...] = field(default_factory=tuple)

    @property
    def settled(self) -> bool:
        """Whether every neighbour pair is settled (False with fewer than two contestants)."""
        return bool(len(self.pairs)) and bool(self.pairs["settled"].all())

    @property
    def votes_needed(self) -> float:
        """The estimated votes until the last neighbour pair settles (0 when settled, inf when unknown)."""
        return float(self.pairs["votes_needed"].max()) if len(self.pairs) else math.inf

    @property
    def unsettled(self) -> frozenset[str]:
        """The contestants in a neighbour pair that is not settled yet."""
        open_ = self.pairs[~self.pairs["settled"].astype(bool)]
        return frozenset(open_["higher"]) | frozenset(open_["lower"])

    def summary(self) -> str:
        """One sentence for the owner: settled after N votes, or how far from it."""
        if not len(self.pairs):
            return "Not settled: the stopping rule needs votes on two or more contestants."
        target = f" or measured to +-{self.half_width:g} points" if self.half_width else ""
        if self.settled:
            return f"Settled after {self.votes:,} votes: every pair of neighbours is separated at 95%{target}."
        done, total = int(self.pairs["settled"].sum()), len(self.pairs)
        text = f"Not settled yet after {self.votes:,} votes: {done} of {total} neighbour pairs separated at 95%{target}"
        if self.few:
            text += f"; {', '.join(self.few)} {'has' if len(self.few) == 1 else 'have'} {TOO_FEW_TEXT}"
        return text + f"; {needed_text(self.votes_needed)}."


TOO_FEW_TEXT = f"too few votes (under {MIN_VOTES})"


def needed_text(votes: float) -> str:
    """The estimate in words: "about 1,200 more votes needed", or why there is none."""
    if votes == 0:
        return "no more votes needed"
    if not math.isfinite(votes):
        return "too close to call so far (set WORKBENCH_SETTLE_HALF_WIDTH to settle near-ties)"
    return f"about {_round(votes):,} more votes needed"


def _round(votes: float) -> int:
    """Two significant figures: an estimate should not look more precise than it is."""
    votes = math.ceil(votes)
    if votes < 100:
        return votes
    digits = 10 ** (len(str(votes)) - 2)
    return math.ceil(votes / digits) * digits


def _no_pairs() -> pd.DataFrame:
    columns = {"higher": object, "lower": object, "gap": float, "overlap": float, "separated": bool}
    columns |= {"settled": bool, "votes_needed": float}
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def stopping_rule(board: pd.DataFrame, *, half_width: float | None = None) -> Settlement:
    """The stopping rule on a leaderboard (see the module docstring).

    Args:
        board: `scoring.leaderboard(...)` (or `Standings.board`): model, rating, lower, upper, battles.
        half_width: A pair whose two intervals are both at most this many points wide on each side counts as
            settled too (None or 0: only separation counts).

    Returns:
        The Settlement; `votes` is half the sum of the battles (each vote has two sides).
    """
    board = board.sort_values("rating", ascending=False, kind="stable")
    columns = [board[c].to_numpy(dtype=float) for c in ("rating", "lower", "upper", "battles")]
    return rule_of(list(board["model"]), *columns, half_width=half_width)


def rule_of(
    models: list[str],
    rating: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    battles: np.ndarray,
    *,
    half_width: float | None = None,
) -> Settlement:
    """`stopping_rule` on a board given as arrays, best first (what the sampler's fit calls on every refresh)."""
    half_width = float(half_width) if half_width else None
    if len(models) == 0:
        return Settlement(0, _no_pairs(), half_width)
    votes = int(battles.sum()) // 2
    few = tuple(m for m, n in zip(models, battles, strict=True) if n < MIN_VOTES)
    gap = rating[:-1] - rating[1:]
    facing = (rating[:-1] - lower[:-1]) + (upper[1:] - rating[1:])
    separated = lower[:-1] > upper[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        needed = np.where(gap > 0, votes * ((facing / np.where(gap > 0, gap, 1.0)) ** 2 - 1.0), math.inf)
    narrow = np.zeros(len(gap), dtype=bool)
    if half_width:
        half = (upper - lower) / 2
        widest = np.maximum(half[:-1], half[1:])
        narrow = widest <= half_width
        needed = np.minimum(needed, votes * ((widest / half_width) ** 2 - 1.0))
    fewest = np.minimum(battles[:-1], battles[1:])
    settled = (separated | narrow) & (fewest >= MIN_VOTES)
    needed = np.where(settled, 0.0, np.maximum(np.maximum(needed, 1.0), MIN_VOTES - fewest))
    pairs = pd.DataFrame(
        {
            "higher": pd.Series(models[:-1], dtype=object),
            "lower": pd.Series(models[1:], dtype=object),
            "gap": gap,
            "overlap": facing - gap,
            "separated": separated,
            "settled": settled,
            "votes_needed": needed,
        }
    )
    return Settlement(votes, pairs, half_width, few)
