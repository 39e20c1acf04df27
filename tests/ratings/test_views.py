"""Each leaderboard view says how many votes the other holds: counts of votes per view from the store's tallies.

Run: .venv/bin/python -m pytest -q tests/ratings/test_views.py
"""

from __future__ import annotations

from workbench.generation.settings import GenerationSettings
from workbench.ratings.views import view_counts, views_note
from workbench.store import Store

COLD, WARM = GenerationSettings(temperature=0.2), GenerationSettings(temperature=1.2)


def test_votes_are_counted_under_the_view_that_ranks_them(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        assert view_counts(store.vote_tallies()) == dict.fromkeys(
            ("checkpoint", "settings", "both", "checkpoint_only", "settings_only"), 0
        )
        for i in range(3):  # a fresh Space: settings pairs of the one checkpoint
            cold = store.add_generation("base", f"Q{i}?", "cold", COLD)
            warm = store.add_generation("base", f"Q{i}?", "warm", WARM)
            store.add_vote(cold, warm, "b", rater="alice")
        base, run = store.add_generation("base", "Q?", "b", COLD), store.add_generation("run", "Q?", "r", COLD)
        store.add_vote(base, run, "a", rater="alice")
        mixed = store.add_generation("run", "Q?", "r warm", WARM)
        store.add_vote(base, mixed, "tie", rater="bob")  # checkpoint and settings both differ
        counts = view_counts(store.vote_tallies())
        assert view_counts(store.battles()) == counts  # one row per vote or a tally: the same counts
    assert counts == {"checkpoint": 2, "settings": 4, "both": 5, "checkpoint_only": 1, "settings_only": 3}
    assert views_note(counts, "checkpoint") == (
        "2 votes compare checkpoints here; 3 more votes compare two settings of one checkpoint: "
        "rank by Generation settings to see them."
    )
    assert views_note(counts, "settings") == (
        "4 votes compare generation settings here; 1 more vote compares two checkpoints under the same settings: "
        "rank by Checkpoints to see them."
    )
    assert views_note(counts, "both") == "5 votes compare a checkpoint or its settings here."
    assert views_note({**counts, "settings_only": 0}, "checkpoint") == "2 votes compare checkpoints here."
