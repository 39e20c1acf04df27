"""How many votes each leaderboard view counts, and the sentence that tells a reader where the others are.

A vote between two checkpoints under the same settings counts when ranking checkpoints; a vote between two
settings of one checkpoint (the Arena's settings pairs) counts when ranking settings; "both" counts every vote
where anything differs. A reader of one view should know the other holds votes too (a fresh Space's first votes
are all settings pairs, and the checkpoint view would say 0 without a word):

    counts = view_counts(snap.tallies)                    # {"checkpoint": 3, "settings": 5, "both": 8}
    views_note(counts, "checkpoint")                      # "3 votes compare checkpoints here; 5 more ... settings."

Pure pandas over `Store.vote_tallies()` (or battles: one row per vote, no `n`), filtered or not. Torch-free.
"""

from __future__ import annotations

import pandas as pd

from workbench.ratings import scoring

# The intervals both leaderboards show (the app's tab and the dashboard page): the same numbers in both.
BOOTSTRAP, SEED = 1000, 0
VIEW_NAMES = {"checkpoint": "Checkpoints", "settings": "Generation settings", "both": "Checkpoint + settings"}


def view_counts(tallies: pd.DataFrame) -> dict[str, int]:
    """Votes each view ranks on: "checkpoint", "settings" and "both", plus "checkpoint_only" (two checkpoints
    under the same settings) and "settings_only" (one checkpoint under two settings)."""
    if tallies.empty:
        return dict.fromkeys(("checkpoint", "settings", "both", "checkpoint_only", "settings_only"), 0)
    n = scoring.weights(tallies)
    models = (tallies["model_a"] != tallies["model_b"]).to_numpy()
    if {"settings_a", "settings_b"} <= set(tallies.columns):
        settings = (tallies["settings_a"] != tallies["settings_b"]).to_numpy(dtype=bool)
    else:  # FastChat battles without settings: every vote is between checkpoints
        settings = models & False
    return {
        "checkpoint": int(n[models].sum()),
        "settings": int(n[settings].sum()),
        "both": int(n[models | settings].sum()),
        "checkpoint_only": int(n[models & ~settings].sum()),
        "settings_only": int(n[settings & ~models].sum()),
    }


def _votes(n: int, verb: str, more: str = "") -> str:
    """ "1 vote compares", "3 more votes compare"."""
    return f"{n} {more}vote{'' if n == 1 else 's'} {verb}{'s' if n == 1 else ''}"


def views_note(counts: dict[str, int], by: str) -> str:
    """One sentence: how many votes this view ranks on, and how many it leaves to another view (and which)."""
    if by == "checkpoint":
        here, other, where = counts["checkpoint"], counts["settings_only"], "settings"
        what, elsewhere = "checkpoints", "two settings of one checkpoint"
    elif by == "settings":
        here, other, where = counts["settings"], counts["checkpoint_only"], "checkpoint"
        what, elsewhere = "generation settings", "two checkpoints under the same settings"
    else:
        return f"{_votes(counts['both'], 'compare')} a checkpoint or its settings here."
    sentence = f"{_votes(here, 'compare')} {what} here"
    if other:
        sentence += f"; {_votes(other, 'compare', 'more ')} {elsewhere}: rank by {VIEW_NAMES[where]} to see them"
    return sentence + "."
