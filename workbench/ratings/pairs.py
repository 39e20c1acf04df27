"""The sampler served from the store: which pair the Arena, the Rate page and new pairs get, and whether the
ranking is settled, with the fit cached per store so that choosing a pair stays fast at 100,000 votes.

    item = next_pair(store, settings, "alice", differ="checkpoint")      # a PairItem, or None
    a, b = pick(store, settings, ["ckpt-1", "ckpt-2", "base"])            # which two should answer a new prompt
    state = current_fit(store, settings)                                 # sampler.Fit: .board, .rule (settled?)
    arena_note(store, settings)    # "The ranking is settled after 4,210 votes: ..." when it is, else None

The fit counts human votes only (raters named `judge:<model>` are LLM judges), as the leaderboard does (raters the
owner dropped left out, one visitor's votes on a pair capped at WORKBENCH_RATER_CAP), and ranks checkpoints, or, for
`differ="settings"`, the settings of one checkpoint's outputs (votes between two settings of one checkpoint). It
is keyed on the votes' mark (`Store.votes_mark()`, the highest vote id: one index lookup, where `ratings_mark`
scans the votes) and redone when votes arrived and either REFRESH_SHARE of them are new since the fit or it is
REFRESH_S old, and in any case once it is REFRESH_IDLE_S old: one vote more among 100,000 does not change which
pair is worth asking, and reading the tally costs more than the 50 ms a pair may take. `WORKBENCH_PAIRS=uniform`
needs no fit at all. The cache lives in this process and is thread-safe.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from workbench.ratings import sampler
from workbench.ratings.leaderboard import contestants
from workbench.ratings.raters import capped

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.store import PairItem, Store

REFRESH_SHARE = 0.01  # refit once this share of the votes is new since the last fit (the benchmark uses it too)
REFRESH_S = 10.0  # ... or when the fit is this old and any vote arrived
REFRESH_IDLE_S = 60.0  # ... or when it is this old at all (a deleted vote does not move the mark)
JUDGE_PREFIX = "judge:"  # raters of this name are LLM judges, not people (issue 20's judge)
_LOCK = threading.Lock()
_FITS: dict[tuple, _Cached] = {}
_REFITTING: set[tuple] = set()  # the keys a background thread is refitting now


@dataclass(frozen=True)
class _Cached:
    mark: int
    at: float
    fit: sampler.Fit


def stale(fitted: int, votes: int) -> bool:
    """Whether a fit at `fitted` votes (or vote id) should be redone now that there are `votes`."""
    return votes < fitted or votes - fitted >= max(1.0, REFRESH_SHARE * fitted)


def human_tally(tally: pd.DataFrame, differ: str = "checkpoint") -> pd.DataFrame:
    """The votes the sampler and its stopping rule count: people's, with model_a/model_b naming the contestants
    (checkpoints; or, for `differ="settings"`, the settings labels of votes between one checkpoint's outputs)."""
    if tally.empty:
        return tally
    people = tally[~tally["judge"].astype(str).str.startswith(JUDGE_PREFIX)]
    if differ == "settings":
        return contestants(people[people["model_a"] == people["model_b"]], "settings")
    return contestants(people, "checkpoint")


def current_fit(store: Store, settings: Settings, differ: str = "checkpoint", *, wait: bool = False) -> sampler.Fit:
    """The sampler's fit of the store's votes (cached; see the module docstring).

    The first fit of a store is made while the caller waits; later, a stale fit is served while a background
    thread makes the next one (one at a time per store and kind), so no visitor waits for a refit (about a second
    at 100,000 votes on a busy machine). `wait=True` refits in the caller's thread instead.
    """
    mark = store.votes_mark()
    key = (store.url, differ, settings.settle_half_width, settings.rater_cap)
    with _LOCK:
        cached = _FITS.get(key)
    if cached is not None:
        age = time.monotonic() - cached.at
        moved = mark != cached.mark
        if age < REFRESH_IDLE_S and (not moved or (age < REFRESH_S and not stale(cached.mark, mark))):
            return cached.fit
        if not wait:
            with _LOCK:
                busy = key in _REFITTING
                _REFITTING.add(key)
            if not busy:
                threading.Thread(target=_refit, args=(store, settings, differ, key, mark), daemon=True).start()
            return cached.fit
    return _refit(store, settings, differ, key, mark)


def _refit(store: Store, settings: Settings, differ: str, key: tuple, mark: int) -> sampler.Fit:
    try:
        tally = human_tally(store.vote_tallies(), differ)
        dropped = list(store.dropped_raters())
        if dropped and len(tally):
            tally = tally[~tally["judge"].isin(dropped)].reset_index(drop=True)
        # The leaderboard's own counting: raters the owner dropped left out, one visitor's votes on a pair capped.
        tally = capped(tally, settings.rater_cap)
        fit = sampler.fit(tally, half_width=settings.settle_half_width or None)
        with _LOCK:
            _FITS[key] = _Cached(mark, time.monotonic(), fit)
        return fit
    finally:
        with _LOCK:
            _REFITTING.discard(key)


class Chooser:
    """What `Store.next_pair_for(choose=...)` calls: draws one of the offered contestant pairs by its chance."""

    def __init__(self, store: Store, settings: Settings, differ: str, rng: random.Random | None = None) -> None:
        self.mode = settings.pairs
        self.half_width = settings.settle_half_width or None
        self.rng = rng or random.SystemRandom()
        self.fit = current_fit(store, settings, differ) if self.mode == "adaptive" else None

    def __call__(self, offered: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
        if self.fit is None:
            return sampler.draw(sampler.weights(None, offered, mode="uniform"), self.rng)
        chances = sampler.weights(self.fit, offered, mode=self.mode, half_width=self.half_width)
        return sampler.draw(chances, self.rng)

    @property
    def settled(self) -> bool:
        """Whether the ranking is settled, so the adaptive sampler serves nothing (never under uniform pairs)."""
        return self.fit is not None and self.fit.rule.settled


def chooser(store: Store, settings: Settings, differ: str = "checkpoint", rng: random.Random | None = None) -> Chooser:
    """The sampler set up for the store's current votes, under the owner's WORKBENCH_PAIRS."""
    return Chooser(store, settings, differ, rng)


def next_pair(
    store: Store,
    settings: Settings,
    rater: str | None,
    *,
    session: str | None = None,
    differ: str = "checkpoint",
    checkpoints: Sequence[str] | None = None,
    rng: random.Random | None = None,
) -> PairItem | None:
    """The next blind pair for this rater, its two contestants chosen by the sampler (`Store.next_pair_for`).

    None when the rater has rated every pair on offer, or, with adaptive pairs, when no pair they could rate is
    still unsettled (`arena_note` says whether the ranking is settled).
    """
    choose = chooser(store, settings, differ, rng)
    return store.next_pair_for(rater, session=session, differ=differ, checkpoints=checkpoints, choose=choose)


def pick(
    store: Store,
    settings: Settings,
    names: Sequence[str],
    *,
    differ: str = "checkpoint",
    rng: random.Random | None = None,
) -> tuple[str, str] | None:
    """Which two of `names` (store names of checkpoints, or settings labels) should answer a new prompt, or None
    when the ranking is settled and none of them needs votes. Names never voted on are placed first."""
    offered = list(itertools.combinations(dict.fromkeys(names), 2))
    return chooser(store, settings, differ, rng)(offered) if offered else None


def arena_note(store: Store, settings: Settings, differ: str = "checkpoint") -> str | None:
    """The Arena's sentence when the adaptive sampler serves nothing because the ranking is settled, else None."""
    if settings.pairs != "adaptive":
        return None
    rule = current_fit(store, settings, differ).rule
    if not rule.settled:
        return None
    what = "settings" if differ == "settings" else "checkpoints"
    return (
        f"The ranking of {what} is settled after {rule.votes:,} votes: every pair of neighbours is separated at "
        "95%, so no more votes are needed. Thank you!"
    )
