"""The stopping rule: is the leaderboard's order settled, and about how many more votes would settle it?

For each pair of neighbours on the leaderboard (best first) the rule asks whether they are separated at 95%: whether
the 95% interval of their rating difference excludes zero. The difference and its interval come from the same fit
as the ratings (Bradley-Terry's posterior mode under the weak prior, `workbench.ratings.posterior`), whose
covariance knows that two neighbours compared often are compared precisely, even while each one's own interval
(relative to the mean) is still wide: two intervals may overlap a little and their difference still be clear of
zero (the classic reading error the rule avoids). A pair is settled when it is separated, or, with a half-width
target (`WORKBENCH_SETTLE_HALF_WIDTH`), when both contestants' 95% intervals are narrower than +-that (a near-tie
measured well enough); the ranking is settled when every neighbour pair is and every contestant has MIN_VOTES
battles.

    rule = stopping_rule(battles, half_width=None)     # battles, a tally, or Store.vote_tallies()
    rule.settled; rule.votes; rule.votes_needed; rule.pairs     # one row per neighbour pair
    print(rule.summary())    # "Settled after 4,210 votes: every pair of neighbours is separated at 95%."

The votes still needed are an estimate: intervals narrow as 1 / sqrt(votes), so a pair whose margin (the 95%
half-width of its difference) is f times its gap needs about votes x (f^2 - 1) more, if votes keep arriving as they
have. The Leaderboard page, the CLI, the Arena and the benchmark all use this one rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.ratings import posterior, scoring
from workbench.ratings.scoring import MIN_VOTES

PAIR_COLUMNS = ["higher", "lower", "gap", "margin", "separated", "settled", "votes_needed"]
TOO_FEW_TEXT = f"too few votes (under {MIN_VOTES})"


@dataclass(frozen=True)
class Settlement:
    """The stopping rule's verdict on one leaderboard.

    Attributes:
        votes: Votes counted.
        pairs: One row per neighbour pair, best first (columns PAIR_COLUMNS): higher, lower (the two contestants),
            gap (rating points between them), margin (the 95% half-width of that gap: separated when gap > margin),
            separated, settled, votes_needed (0 when settled; inf when their ratings are equal).
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
        open_ = ~self.pairs["settled"].to_numpy(dtype=bool)
        return frozenset(self.pairs["higher"].to_numpy()[open_]) | frozenset(self.pairs["lower"].to_numpy()[open_])

    def summary(self) -> str:
        """One sentence for the owner: settled after N votes, or how far from it."""
        if not len(self.pairs):
            return "Not settled: the stopping rule needs votes on two or more contestants."
        target = f" or measured to ±{self.half_width:g} points" if self.half_width else ""
        if self.settled:
            return f"Settled after {self.votes:,} votes: every pair of neighbours is separated at 95%{target}."
        done, total = int(self.pairs["settled"].sum()), len(self.pairs)
        text = f"Not settled yet after {self.votes:,} votes: {done} of {total} neighbour pairs separated at 95%{target}"
        if self.few:
            text += f"; {', '.join(self.few)} {'has' if len(self.few) == 1 else 'have'} {TOO_FEW_TEXT}"
        return text + f"; {needed_text(self.votes_needed)}."

    def table(self) -> pd.DataFrame:
        """The neighbour pairs for people to read: neighbours, gap ("25.1 ± 18.2"), separated, votes needed."""
        rows = self.pairs
        return pd.DataFrame(
            {
                "neighbours": rows["higher"] + " > " + rows["lower"],
                "gap (95%)": [f"{g:.1f} ± {m:.1f}" for g, m in zip(rows["gap"], rows["margin"], strict=True)],
                "separated": rows["separated"].map({True: "yes", False: "no"}),
                "votes needed": [_needed_cell(n) for n in rows["votes_needed"]],
            }
        )

    def as_dict(self) -> dict:
        """JSON-ready: settled, votes, votes_needed (None when unknown), half_width, summary, pairs."""
        pairs = [
            {**row, "votes_needed": row["votes_needed"] if math.isfinite(row["votes_needed"]) else None}
            for row in self.pairs.to_dict("records")
        ]
        return {
            "settled": self.settled,
            "votes": self.votes,
            "votes_needed": self.votes_needed if math.isfinite(self.votes_needed) else None,
            "half_width": self.half_width,
            "summary": self.summary(),
            "pairs": pairs,
        }


def needed_text(votes: float) -> str:
    """The estimate in words: "about 1,200 more votes needed", or why there is none."""
    if votes == 0:
        return "no more votes needed"
    if not math.isfinite(votes):
        return "too close to call so far (set WORKBENCH_SETTLE_HALF_WIDTH to settle near-ties)"
    return f"about {_round(votes):,} more votes needed"


def _needed_cell(votes: float) -> str:
    if votes == 0:
        return "settled"
    return f"about {_round(votes):,}" if math.isfinite(votes) else "too close to call"


def _round(votes: float) -> int:
    """Two significant figures: an estimate should not look more precise than it is."""
    votes = math.ceil(votes)
    if votes < 100:
        return votes
    digits = 10 ** (len(str(votes)) - 2)
    return math.ceil(votes / digits) * digits


def _no_pairs() -> pd.DataFrame:
    columns = {"higher": object, "lower": object, "gap": float, "margin": float, "separated": bool}
    columns |= {"settled": bool, "votes_needed": float}
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def stopping_rule(battles: pd.DataFrame, *, half_width: float | None = None) -> Settlement:
    """The stopping rule on these votes (see the module docstring).

    Args:
        battles: Battles in FastChat's form or a tally with `n` (`Store.vote_tallies()`), filtered and grouped as
            the leaderboard beside it is (`leaderboard.contestants`).
        half_width: A pair whose two 95% intervals are both at most +-this many points counts as settled too
            (None or 0: only separation counts).
    """
    battles = scoring.check_battles(battles)
    if battles.empty:
        return Settlement(0, _no_pairs(), float(half_width) if half_width else None)
    models, pairs, y, counts = scoring._matchups(battles)
    r, cov, battles_of = posterior_fit(len(models), pairs, y, counts)
    return rule_of(models, r, cov, battles_of, half_width=half_width)


def posterior_fit(
    n_models: int, pairs: np.ndarray, y: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The leaderboard's fit from `scoring._matchups`' arrays: log-odds ratings (mean zero), their covariance
    relative to the mean, and the battles of each contestant."""
    r = scoring._fit(pairs, y, counts, n_models, posterior.PRIOR_L2)[0] if n_models else np.zeros(0)
    c = posterior.contrast(n_models)
    cov = c @ posterior.covariance(pairs, counts, r, n_models) @ c.T
    battles = np.bincount(pairs.ravel(), weights=np.repeat(counts, 2), minlength=n_models)
    return r, cov, battles


def rule_of(
    models: list[str] | tuple[str, ...],
    r: np.ndarray,
    cov: np.ndarray,
    battles: np.ndarray,
    *,
    half_width: float | None = None,
) -> Settlement:
    """`stopping_rule` from a fit: log-odds ratings `r`, their covariance `cov` and each one's `battles`."""
    half_width = float(half_width) if half_width else None
    if len(models) < 1:
        return Settlement(0, _no_pairs(), half_width)
    unit, z = posterior.ELO_PER_UNIT, scoring.Z95
    best = np.argsort(-r, kind="stable")
    hi, lo = best[:-1], best[1:]
    votes = int(battles.sum() + 0.5) // 2
    gap = (r[hi] - r[lo]) * unit
    var = np.diag(cov)
    margin = z * unit * np.sqrt(np.clip(var[hi] + var[lo] - 2 * cov[hi, lo], 0.0, None))
    separated = gap > margin
    with np.errstate(divide="ignore", invalid="ignore"):
        needed = np.where(gap > 0, votes * ((margin / np.where(gap > 0, gap, 1.0)) ** 2 - 1.0), math.inf)
    narrow = np.zeros(len(gap), dtype=bool)
    if half_width:
        half = z * unit * np.sqrt(np.clip(var, 0.0, None))
        widest = np.maximum(half[hi], half[lo])
        narrow = widest <= half_width
        needed = np.minimum(needed, votes * ((widest / half_width) ** 2 - 1.0))
    fewest = np.minimum(battles[hi], battles[lo])
    settled = (separated | narrow) & (fewest >= MIN_VOTES)
    needed = np.where(settled, 0.0, np.maximum(np.maximum(needed, 1.0), MIN_VOTES - fewest))
    names = np.array(models, dtype=object)
    pairs = pd.DataFrame(
        {
            "higher": pd.Series(names[hi], dtype=object),
            "lower": pd.Series(names[lo], dtype=object),
            "gap": gap,
            "margin": margin,
            "separated": separated,
            "settled": settled,
            "votes_needed": needed,
        }
    )
    few = tuple(str(names[k]) for k in best if battles[k] < MIN_VOTES)
    return Settlement(votes, pairs, half_width, few)
