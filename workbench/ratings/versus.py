"""One checkpoint against another: the Arena's Bradley-Terry difference, like rates and LLM judges' win shares.

Pure numpy/pandas over frames the store gives (`Store.vote_tallies()`, `Store.reactions()`,
`Store.pair_verdicts()`); `workbench.ratings.verdict` turns the results into a verdict.

    arena = arena_evidence(people_tally, "run/checkpoint-40", "run/checkpoint-20")
    arena.difference, arena.lower, arena.upper, arena.settled, arena.votes_needed
    likes = like_signal(store.reactions(), child, parent)          # a verdict.Signal
    judges = judge_signals(judge_tally, {judge: agreement_on_pairs(verdicts, pair_ids, judge)}, child, parent)

The Arena's difference is the child's rating minus the parent's from the leaderboard's own fit (all checkpoints'
votes, Bradley-Terry's posterior mode under the weak prior, `workbench.ratings.settle.posterior_fit`), so it uses
the votes against other checkpoints too, and its 95% interval comes from the covariance of the two ratings, not
from their two intervals (which would overstate the doubt). The stopping rule is the leaderboard's
(`settle.rule_of`) on these two contestants. A like rate is likes / (likes + dislikes) with a Wilson interval; the
difference of two rates has Newcombe's hybrid score interval (Newcombe 1998, method 10), sound for small counts; it
counts with MIN_VOTES reactions or more on each side. A
judge's win share is the child's share of its decisive verdicts on child-against-parent pairs (a sign test:
ties left out) with a Wilson interval around 0.5; it counts only where it agrees with people on these pairs better
than chance (Cohen's kappa above 0 over at least MIN_VOTES comparisons).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.ratings import agreement, posterior, scoring, settle
from workbench.ratings.scoring import MIN_VOTES
from workbench.ratings.verdict import Signal, z_of


@dataclass(frozen=True)
class ArenaEvidence:
    """People's Arena votes on child against parent.

    Attributes:
        child, parent: The two checkpoints (store names).
        difference: The child's rating minus the parent's, Elo points (NaN when either has no votes).
        lower, upper: Its 95% interval.
        votes_between: Votes that put the two side by side; wins, losses, ties: the child's among them.
        child_battles, parent_battles: Each one's votes against anyone.
        settled: The stopping rule's state for this pair (separated, or measured to the half-width target, with
            MIN_VOTES each); votes_needed: its estimate of the votes still needed (0 settled, inf unknown).
        votes: All votes in the fit.
    """

    child: str
    parent: str
    difference: float = math.nan
    lower: float = math.nan
    upper: float = math.nan
    votes_between: int = 0
    wins: int = 0
    losses: int = 0
    ties: int = 0
    child_battles: int = 0
    parent_battles: int = 0
    settled: bool = False
    votes_needed: float = math.inf
    votes: int = 0

    @property
    def separated(self) -> bool:
        """Whether the 95% interval of the difference excludes 0."""
        return math.isfinite(self.lower) and (self.lower > 0 or self.upper < 0)

    @property
    def enough(self) -> bool:
        """Whether both have MIN_VOTES votes (the stopping rule's minimum)."""
        return min(self.child_battles, self.parent_battles) >= MIN_VOTES

    @property
    def decisive(self) -> bool:
        """Whether the Arena decides the verdict: enough votes and an interval that excludes 0."""
        return self.enough and self.separated

    def why_undecided(self) -> str:
        """Why the Arena does not decide, in a few words."""
        if not math.isfinite(self.difference):
            missing = [n for n, b in ((self.child, self.child_battles), (self.parent, self.parent_battles)) if not b]
            return f"no Arena votes on {' or '.join(missing) or 'these two'}"
        if not self.enough:
            return f"the Arena has {min(self.child_battles, self.parent_battles)} of the {MIN_VOTES} votes it needs"
        return f"the Arena's interval includes 0; {settle.needed_text(self.votes_needed)}"

    def summary(self) -> str:
        """One line: the difference, its interval, the votes and the stopping rule's state."""
        if not math.isfinite(self.difference):
            return f"Arena: {self.why_undecided()}."
        state = "settled" if self.settled else f"not settled ({settle.needed_text(self.votes_needed)})"
        return (
            f"Arena: child {self.difference:+.1f} points against its parent (95% interval {self.lower:+.1f} to "
            f"{self.upper:+.1f}); {self.votes_between} votes side by side ({self.wins} won, {self.losses} lost, "
            f"{self.ties} tied), {self.child_battles} and {self.parent_battles} votes in all; stopping rule: {state}."
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN and infinity as None)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}
        return {**out, "separated": self.separated, "decisive": self.decisive, "summary": self.summary()}


def _direct(battles: pd.DataFrame, child: str, parent: str) -> tuple[int, int, int]:
    """The child's wins, losses and ties in battles that put it beside the parent."""
    n = scoring.weights(battles)
    winner = battles["winner"].to_numpy()
    a, b = battles["model_a"].to_numpy(), battles["model_b"].to_numpy()
    child_a, child_b = (a == child) & (b == parent), (a == parent) & (b == child)
    wins = n[(child_a & (winner == "model_a")) | (child_b & (winner == "model_b"))].sum()
    losses = n[(child_a & (winner == "model_b")) | (child_b & (winner == "model_a"))].sum()
    ties = n[(child_a | child_b) & np.isin(winner, ["tie", "tie (bothbad)"])].sum()
    return int(wins), int(losses), int(ties)


def arena_evidence(battles: pd.DataFrame, child: str, parent: str, *, half_width: float | None = None) -> ArenaEvidence:
    """The child's Bradley-Terry difference from its parent in these battles (people's votes ranked by checkpoint,
    a tally or battles one by one), its 95% interval and the stopping rule's state for the two."""
    battles = scoring.check_battles(battles)
    if battles.empty:
        return ArenaEvidence(child, parent)
    models, pairs, y, counts = scoring._matchups(battles)
    r, cov, battles_of = settle.posterior_fit(len(models), pairs, y, counts)
    have = {m: int(battles_of[i]) for i, m in enumerate(models)}
    wins, losses, ties = _direct(battles, child, parent)
    counted = {"wins": wins, "losses": losses, "ties": ties, "votes_between": wins + losses + ties}
    counted |= {"child_battles": have.get(child, 0), "parent_battles": have.get(parent, 0), "votes": int(counts.sum())}
    if child not in have or parent not in have:
        return ArenaEvidence(child, parent, **counted)
    c, p = models.index(child), models.index(parent)
    unit = posterior.ELO_PER_UNIT
    difference = float((r[c] - r[p]) * unit)
    margin = scoring.Z95 * unit * math.sqrt(max(cov[c, c] + cov[p, p] - 2 * cov[c, p], 0.0))
    pick = [c, p]
    rule = settle.rule_of([child, parent], r[pick], cov[np.ix_(pick, pick)], battles_of[pick], half_width=half_width)
    return ArenaEvidence(
        child,
        parent,
        difference=difference,
        lower=difference - margin,
        upper=difference + margin,
        settled=rule.settled,
        votes_needed=rule.votes_needed,
        **counted,
    )


def newcombe_interval(x1: int, n1: int, x2: int, n2: int, z: float = scoring.Z95) -> tuple[float, float]:
    """Newcombe's hybrid score interval of p1 - p2 from two Wilson intervals (NaN when either n is 0)."""
    if not n1 or not n2:
        return (math.nan, math.nan)
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = scoring.wilson_interval(x1, n1, z)
    l2, u2 = scoring.wilson_interval(x2, n2, z)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def like_counts(reactions: pd.DataFrame, model: str) -> tuple[int, int]:
    """(likes, likes + dislikes) of one checkpoint's replies in `Store.reactions()`."""
    if reactions.empty:
        return 0, 0
    kinds = reactions.loc[reactions["model"] == model, "kind"]
    return int((kinds == "like").sum()), int(kinds.isin(["like", "dislike"]).sum())


def _rate_text(x: int, n: int) -> str:
    if not n:
        return "no reactions"
    lower, upper = scoring.wilson_interval(x, n)
    return f"{x}/{n} liked (95% {lower:.2f} to {upper:.2f})"


def like_signal(reactions: pd.DataFrame, child: str, parent: str) -> Signal:
    """The like rates of child and parent and the Newcombe interval of their difference, as a verdict signal."""
    (x1, n1), (x2, n2) = like_counts(reactions, child), like_counts(reactions, parent)
    rate = lambda x, n: x / n if n else None  # noqa: E731
    note = f"{_rate_text(x1, n1)} against {_rate_text(x2, n2)}; not blind (people know which checkpoint they chose)"
    if not (n1 and n2):
        return Signal("like rate", "likes", rate(x1, n1), rate(x2, n2), n=n1 + n2, counted=False, note=note)
    counted = min(n1, n2) >= MIN_VOTES
    if not counted:
        note += f" (counted with {MIN_VOTES} or more reactions each)"
    interval = lambda level: newcombe_interval(x1, n1, x2, n2, z_of(level))  # noqa: E731
    return Signal("like rate", "likes", x1 / n1, x2 / n2, True, n1 + n2, interval, counted, note)


def wilson_at(successes: int, n: int, level: float) -> tuple[float, float]:
    """The Wilson interval at a confidence level."""
    return scoring.wilson_interval(successes, n, z_of(level))


def judge_signals(tally: pd.DataFrame, agreements: dict[str, dict[str, Any]], child: str, parent: str) -> list[Signal]:
    """One signal per LLM judge that voted on child against parent.

    Args:
        tally: Battles or a tally of judges' votes (the `judge` column names the judge), ranked by checkpoint.
        agreements: Per judge, its agreement with people on these pairs (`agreement_on_pairs`); a judge left out
            has none measured.
        child, parent: The two checkpoints.
    """
    signals: list[Signal] = []
    if tally.empty:
        return signals
    for judge in sorted(tally["judge"].dropna().unique()):
        wins, losses, ties = _direct(tally[tally["judge"] == judge], child, parent)
        if not wins + losses + ties:
            continue
        agree = agreements.get(judge, {})
        kappa, compared = agree.get("kappa", math.nan), agree.get("comparisons", 0)
        calibrated = compared >= MIN_VOTES and math.isfinite(kappa) and kappa > 0
        decisive = wins + losses
        note = f"{wins} won, {losses} lost, {ties} tied; agreement with people on these pairs: " + (
            f"kappa {kappa:.2f} over {compared} comparisons" if compared else "none measured"
        )
        if not calibrated:
            note += f" (counted only with kappa above 0 over {MIN_VOTES} or more)"
        interval = None
        if decisive:
            interval = lambda level, w=wins, d=decisive: tuple(x - 0.5 for x in wilson_at(w, d, level))  # noqa: E731
        share = wins / decisive if decisive else None
        name = f"{judge}'s win share"
        counted = calibrated and interval is not None
        signals.append(Signal(name, "judge", share, 0.5, True, wins + losses + ties, interval, counted, note))
    return signals


def agreement_on_pairs(verdicts: pd.DataFrame, pairs: set[tuple[int, int]], judge: str) -> dict[str, Any]:
    """`agreement.judge_agreement` (the MT-bench measures of a judge against people) on these pairs only."""
    keep = [p in pairs for p in zip(verdicts["generation_a_id"], verdicts["generation_b_id"], strict=True)]
    return agreement.judge_agreement(verdicts[keep], judge)
