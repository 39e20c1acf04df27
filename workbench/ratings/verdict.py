"""The rule that turns a child checkpoint's evidence against its parent into "better", "worse" or "not yet known".

Pure: it takes the evidence already measured (`workbench.ratings.versus` for the Arena, likes and judges,
`workbench.evaluation.paired` for the suites' metrics; `workbench.studio.lineage` gathers them from the store) and
applies RULE, written down here once and shown with every verdict (docs/verdict.md explains it).

    verdict = decide(arena, signals)         # arena: versus.ArenaEvidence; signals: [Signal, ...]
    verdict.outcome      # "better" | "worse" | "not yet known"
    verdict.reason       # one sentence: which evidence decided, or what is missing
    verdict.as_dict()    # JSON-ready, each signal's 95% and adjusted intervals included

The Arena's people are the primary endpoint, fixed before looking: the child's Bradley-Terry difference from its
parent, with the 95% interval of that difference from the leaderboard's own fit, decides once both have enough
votes. Everything else is secondary and decides only while the Arena cannot: each secondary signal's interval is
taken at level 1 - 0.05 / k for k counted signals (Bonferroni), so the chance that any of them points the wrong way
by chance stays under 5% however many suites, judges and likes there are; "better" needs at least one of them to
exclude no-difference in the child's favour and none against it, "worse" the reverse; a split is not yet known.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

BETTER, WORSE, UNKNOWN = "better", "worse", "not yet known"
OUTCOMES = (BETTER, WORSE, UNKNOWN)
ALPHA = 0.05  # the family-wise error rate of the whole verdict

RULE = (
    "1. The Arena decides first: when child and parent each have at least 10 people's votes and the 95% interval "
    "of the child's Bradley-Terry difference from its parent excludes 0, the child is better (interval above 0) "
    "or worse (below 0), whatever else says.\n"
    "2. Otherwise the secondary evidence decides: every signal with an interval (a suite metric with per-item "
    "scores on the same items, the like rate with 10 reactions or more on each side, an LLM judge that agrees "
    "with people on these pairs better than chance over 10 comparisons or more) counts, "
    "each interval taken at 1 - 0.05/k for k counted signals (Bonferroni). Better when at least one excludes "
    "no-difference in the child's favour and none against it; worse in the mirror case.\n"
    "3. Anything else (no evidence, intervals that all include no-difference, or signals that disagree) is not "
    "yet known; the stopping rule's estimate says how many more Arena votes would settle it."
)


def z_of(level: float) -> float:
    """The two-sided normal quantile of a confidence level (0.95 -> 1.96)."""
    return NormalDist().inv_cdf(0.5 + level / 2)


@dataclass(frozen=True)
class Signal:
    """One secondary piece of evidence: a difference between child and parent with an interval at any level.

    Attributes:
        name: What it is, as people read it ("chrF on identity_heldout", "like rate", "judge:base's win share").
        kind: "metric", "likes" or "judge".
        child: The child's value (None when it has none).
        parent: The parent's value, or the reference value (0.5 for a judge's win share).
        higher_is_better: Whether a higher value is the child's gain (False for perplexity).
        n: How many items, votes or reactions it rests on.
        interval: level -> (lower, upper) of child - parent, or None when there is no interval.
        counted: Whether the rule counts it (False: shown only); `note` says why not.
        note: A short remark (how the interval was made, or why it is not counted).
    """

    name: str
    kind: str
    child: float | None
    parent: float | None
    higher_is_better: bool = True
    n: int = 0
    interval: Callable[[float], tuple[float, float]] | None = field(default=None, repr=False, compare=False)
    counted: bool = True
    note: str = ""

    @property
    def delta(self) -> float | None:
        """child - parent (None when either is missing)."""
        if self.child is None or self.parent is None:
            return None
        return self.child - self.parent

    def direction(self, level: float) -> int:
        """+1 when the interval at `level` says the child is better, -1 worse, 0 undecided or no interval."""
        if self.interval is None:
            return 0
        lower, upper = self.interval(level)
        if not (math.isfinite(lower) and math.isfinite(upper)):
            return 0
        sign = 1 if lower > 0 else -1 if upper < 0 else 0
        return sign if self.higher_is_better else -sign

    def as_dict(self, level: float) -> dict[str, Any]:
        """JSON-ready, with the 95% interval and the one at the rule's `level`."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "child": self.child,
            "parent": self.parent,
            "delta": self.delta,
            "higher_is_better": self.higher_is_better,
            "n": self.n,
            "counted": self.counted,
            "note": self.note,
        }
        for key, at in (("interval_95", 0.95), ("interval_adjusted", level)):
            out[key] = _finite_pair(self.interval(at)) if self.interval is not None else None
        out["says"] = {1: BETTER, -1: WORSE, 0: "no difference shown"}[self.direction(level)]
        return out


def _finite_pair(pair: tuple[float, float]) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in pair]


@dataclass(frozen=True)
class Verdict:
    """The outcome and why.

    Attributes:
        outcome: "better", "worse" or "not yet known".
        reason: One sentence: what decided, or what is missing.
        decided_by: "arena", "secondary" or "" (not decided).
        level: The confidence level each counted secondary interval was taken at (1 - 0.05/k).
        arena: The Arena's evidence (`versus.ArenaEvidence`), or None.
        signals: Every secondary signal, counted or not.
    """

    outcome: str
    reason: str
    decided_by: str
    level: float
    arena: Any
    signals: tuple[Signal, ...]
    rule: str = RULE

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: outcome, reason, decided_by, level, rule, arena, signals."""
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "decided_by": self.decided_by,
            "level": self.level,
            "rule": self.rule,
            "arena": self.arena.as_dict() if self.arena is not None else None,
            "signals": [s.as_dict(self.level) for s in self.signals],
        }


def adjusted_level(k: int) -> float:
    """Bonferroni: each of k intervals at 1 - ALPHA / k (0.95 for k <= 1)."""
    return 1 - ALPHA / max(k, 1)


def decide(arena: Any, signals: Sequence[Signal] = ()) -> Verdict:
    """Apply RULE to the Arena's evidence (`versus.ArenaEvidence` or None) and the secondary signals."""
    signals = tuple(signals)
    counted = [s for s in signals if s.counted and s.interval is not None]
    level = adjusted_level(len(counted))
    if arena is not None and arena.decisive:
        outcome = BETTER if arena.lower > 0 else WORSE
        reason = (
            f"The Arena decides: {arena.difference:+.0f} points (95% interval {arena.lower:+.0f} to "
            f"{arena.upper:+.0f}) from people's votes ({arena.votes_between} of them side by side), an interval "
            "that excludes 0."
        )
        against = [s.name for s in counted if s.direction(level) == (-1 if outcome == BETTER else 1)]
        if against:
            reason += f" Note: {_join(against)} {'points' if len(against) == 1 else 'point'} the other way."
        return Verdict(outcome, reason, "arena", level, arena, signals)
    says = {s.name: s.direction(level) for s in counted}
    ups = [name for name, d in says.items() if d > 0]
    downs = [name for name, d in says.items() if d < 0]
    why_arena = arena.why_undecided() if arena is not None else "no Arena votes"
    at = f"{100 * level:.4g}%"
    if ups and not downs:
        reason = f"{_join(ups)} {_verb(ups)} the child at {at} and nothing says worse ({why_arena})."
        return Verdict(BETTER, reason, "secondary", level, arena, signals)
    if downs and not ups:
        reason = f"{_join(downs)} {_verb(downs)} the parent at {at} and nothing says better ({why_arena})."
        return Verdict(WORSE, reason, "secondary", level, arena, signals)
    if ups and downs:
        reason = (
            f"The evidence disagrees: {_join(ups)} {_verb(ups)} the child, {_join(downs)} the parent ({why_arena})."
        )
    elif counted:
        signals_at = f"{len(counted)} secondary signal{'s' if len(counted) > 1 else ''} at {at}"
        reason = f"No interval excludes no-difference yet ({why_arena}; {signals_at})."
    else:
        reason = f"Not enough evidence: {why_arena}, and no secondary signal counts yet."
    return Verdict(UNKNOWN, reason, "", level, arena, signals)


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _verb(names: list[str]) -> str:
    return "favours" if len(names) == 1 else "favour"
