"""The store's ratings read once per change and the leaderboard computed once per selection: what keeps the
Leaderboard page fast at 100,000 votes.

    snap = snapshot(store)                  # re-read only when store.ratings_mark() moved (a vote added/deleted)
    view = ranked(snap, by="settings", raters=["alice"], bootstrap=1000, seed=0)
    view = ranked(snap, rater_kind="all")   # people's votes only unless asked: "humans", "judges" or "all"
    view.standings.board; view.raters; view.reason_ids (the newest votes with a typed reason); view.likert
    view = ranked(snap, cap=settings.rater_cap)   # one visitor's votes on a pair count for at most `cap`
    raters_of(snap, by="checkpoint", cap=10)      # the owner's table: votes per rater, dropped, outliers

`snapshot` holds the votes counted in the database (`Store.vote_tallies()`, a few thousand rows whatever the
number of votes), the slim vote sequence (online Elo, agreement, which votes have reasons) and the Likert scores,
keyed on the ratings' high-water mark and the raters the owner dropped (whose ratings no view counts), so a rerun
reads a row and the few drops from the database. `ranked` filters and groups them and caches the standings per
(mark, selection): Bradley-Terry and its bootstrap run on pair counts, never on rows. The caches live in this
process (a Streamlit server serves every visitor from it) and are thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from workbench.ratings.leaderboard import Standings, contestants, filter_options, filter_ratings, standings
from workbench.ratings.raters import capped, rater_table

_LOCK = threading.Lock()
_SNAPSHOTS: dict[str, Snapshot] = {}
_VIEWS: OrderedDict[tuple, View] = OrderedDict()
_RATERS: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
VIEWS_KEPT = 32  # selections remembered per process (each a few tables of model-by-model size)
REASONS = 20  # the newest typed reasons a view keeps the ids of


@dataclass(frozen=True)
class Snapshot:
    """The ratings of one store at one high-water mark.

    Attributes:
        url: The store's URL.
        mark: `Store.ratings_mark()` when read.
        tallies: `Store.vote_tallies()`.
        sequence: `Store.vote_sequence()`.
        likert: `Store.likert()`.
        dropped: The raters the owner dropped (`Store.dropped_raters()`).
    """

    url: str
    mark: tuple[int, ...]
    tallies: pd.DataFrame
    sequence: pd.DataFrame
    likert: pd.DataFrame
    dropped: frozenset[str] = frozenset()

    def options(self) -> dict[str, list[str]]:
        """What the filters can offer (see `filter_options`)."""
        return filter_options(self.tallies, self.likert)

    @property
    def settings(self) -> dict[str, dict[str, Any]]:
        """Settings label -> the settings dict behind it."""
        return dict(self.tallies.attrs.get("settings", {}))


@dataclass(frozen=True)
class View:
    """A selection's standings and what the page shows beside them (read-only: shared between reruns).

    Attributes:
        standings: The leaderboard's tables.
        raters: Everyone whose votes or scores were counted.
        reason_ids: The newest votes (up to REASONS) whose rater typed a reason, oldest first.
        likert: The Likert scores counted.
    """

    standings: Standings
    raters: frozenset[str]
    reason_ids: tuple[int, ...]
    likert: pd.DataFrame


def snapshot(store) -> Snapshot:
    """The store's ratings, re-read only when a vote or score was added or deleted since the last call."""
    mark, dropped = tuple(store.ratings_mark()), frozenset(store.dropped_raters())
    with _LOCK:
        found = _SNAPSHOTS.get(store.url)
    if found is not None and found.mark == mark:
        if found.dropped == dropped:
            return found
        fresh = replace(found, dropped=dropped)  # the owner dropped a rater or took one back: the votes are the same
    else:  # read outside the lock: two visitors may both read once after a vote, which is cheaper than queueing
        fresh = Snapshot(store.url, mark, store.vote_tallies(), store.vote_sequence(), store.likert(), dropped)
    with _LOCK:
        _SNAPSHOTS[store.url] = fresh
    return fresh


def _key(values: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(sorted(str(v) for v in values)) if values else ()


def ranked(
    snap: Snapshot,
    *,
    by: str = "checkpoint",
    rater_kind: str = "humans",
    raters: Iterable[str] | None = None,
    checkpoints: Iterable[str] | None = None,
    settings: Iterable[str] | None = None,
    backends: Iterable[str] | None = None,
    bootstrap: int = 1000,
    seed: int | None = 0,
    half_width: float | None = None,
    cap: int = 0,
) -> View:
    """Standings of the snapshot's ratings for this selection, computed once per (mark, selection).

    Args:
        snap: From `snapshot(store)`.
        by: "checkpoint", "settings" or "both" (see `contestants`).
        rater_kind: Whose ratings count: "humans" (the default), "judges" (LLM judges) or "all".
        raters, checkpoints, settings, backends: The filters of `filter_ratings` (None or empty: no limit).
        bootstrap: Bootstrap rounds for the intervals.
        seed: Bootstrap seed.
        half_width: The stopping rule's half-width target (WORKBENCH_SETTLE_HALF_WIDTH; None: separation only).
        cap: The most one visitor's votes on one pair of contestants count for (WORKBENCH_RATER_CAP; 0: no cap,
            see `workbench.ratings.raters`). Raters the owner dropped are never counted.
    """
    chosen = {"raters": raters, "checkpoints": checkpoints, "settings": settings, "backends": backends}
    key = (
        snap.url,
        snap.mark,
        by,
        rater_kind,
        bootstrap,
        seed,
        half_width or None,
        cap,
        snap.dropped,
        *(_key(v) for v in chosen.values()),
    )
    with _LOCK:
        if key in _VIEWS:
            _VIEWS.move_to_end(key)
            return _VIEWS[key]
    tallies = capped(contestants(_counted(snap, snap.tallies, rater_kind, chosen), by), cap)
    sequence = contestants(_counted(snap, snap.sequence, rater_kind, chosen), by)
    likert = _counted(snap, snap.likert, rater_kind, chosen)
    view = View(
        standings(tallies, likert, bootstrap=bootstrap, seed=seed, sequence=sequence, half_width=half_width or None),
        frozenset(sequence["judge"]) | frozenset(likert["rater"]) if len(sequence) or len(likert) else frozenset(),
        tuple(int(i) for i in sequence.loc[sequence["has_reason"], "vote_id"].tail(REASONS)) if len(sequence) else (),
        likert,
    )
    with _LOCK:
        _VIEWS[key] = view
        while len(_VIEWS) > VIEWS_KEPT:
            _VIEWS.popitem(last=False)
    return view


def _counted(snap: Snapshot, frame: pd.DataFrame, rater_kind: str, chosen: dict) -> pd.DataFrame:
    """The rows of `frame` a view counts: the filters', less the raters the owner dropped."""
    frame = filter_ratings(frame, rater_kind=rater_kind, **chosen)
    column = "judge" if "judge" in frame.columns else "rater"
    if not snap.dropped or frame.empty or column not in frame.columns:
        return frame
    return frame[~frame[column].isin(list(snap.dropped))].reset_index(drop=True)


def raters_of(snap: Snapshot, *, by: str = "checkpoint", rater_kind: str = "humans", cap: int = 0) -> pd.DataFrame:
    """The owner's table of raters for the votes ranked `by` (`workbench.ratings.raters.rater_table`: votes per
    rater, what they count for under `cap`, dropped, and the outlier test), computed once per (mark, choice)."""
    key = (snap.url, snap.mark, snap.dropped, by, rater_kind, cap)
    with _LOCK:
        if key in _RATERS:
            return _RATERS[key]
    table = rater_table(
        contestants(filter_ratings(snap.tallies, rater_kind=rater_kind), by), dropped=snap.dropped, cap=cap
    )
    with _LOCK:
        _RATERS[key] = table
        while len(_RATERS) > VIEWS_KEPT:
            _RATERS.popitem(last=False)
    return table
