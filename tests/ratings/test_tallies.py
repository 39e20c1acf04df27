"""The leaderboard from votes counted in the database equals the leaderboard from the votes one by one.

Run: .venv/bin/python -m pytest -q tests/ratings/test_tallies.py
A synthetic vote set (workbench.bench.votes, 2,000 votes over 4 checkpoints x 2 settings, settings-only pairs
included) in a real SQLite file and a real PostgreSQL database: `Store.vote_tallies()` + `vote_sequence()` give
exactly the ratings, seeded bootstrap intervals, online Elo, counts, win rates, position bias and rater agreement
that `Store.battles()` gives, ranked by checkpoint, settings or both, filtered or not; the snapshot re-reads only
when a vote moves the high-water mark.
"""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.bench.votes import fill_votes
from workbench.ratings import scoring
from workbench.ratings.leaderboard import contestants, filter_ratings, standings
from workbench.ratings.snapshot import ranked, snapshot
from workbench.store import Store

SETTINGS = [{"temperature": 0.2, "seed": 1}, {"temperature": 1.0, "seed": 1}]


@pytest.fixture
def store(db_url):
    with Store(db_url) as store:
        fill_votes(
            store, votes=2000, checkpoints=4, prompts=20, raters=8, settings=SETTINGS, settings_pairs=True, seed=3
        )
        yield store


def _same_standings(rows, tally, sequence) -> None:
    one = standings(rows, rows.iloc[:0], bootstrap=200)
    other = standings(tally, rows.iloc[:0], bootstrap=200, sequence=sequence)
    assert one.votes == other.votes > 0
    pd.testing.assert_frame_equal(one.board, other.board, check_exact=True, check_dtype=False)
    pd.testing.assert_frame_equal(one.matrix, other.matrix, check_exact=True, check_names=False)
    pd.testing.assert_frame_equal(one.counts, other.counts, check_exact=True, check_names=False, check_dtype=False)
    assert one.bias == other.bias
    assert (one.agreement["items"], one.agreement["raters"]) == (other.agreement["items"], other.agreement["raters"])
    assert one.agreement["alpha"] == pytest.approx(other.agreement["alpha"], abs=1e-12)
    kappas = one.agreement["kappa"], other.agreement["kappa"]
    assert kappas[0]["kappa"].to_numpy() == pytest.approx(kappas[1]["kappa"].to_numpy(), abs=1e-12)


@pytest.mark.parametrize("by", ["checkpoint", "settings", "both"])
def test_tallies_rank_exactly_as_the_votes_one_by_one(store, by):
    rows, tally, sequence = store.battles(), store.vote_tallies(), store.vote_sequence()
    assert int(tally["n"].sum()) == len(rows) == len(sequence) == 2000
    assert list(sequence["vote_id"]) == list(rows["vote_id"])  # the same order, so the same online Elo
    _same_standings(contestants(rows, by), contestants(tally, by), contestants(sequence, by))


def test_filtered_tallies_rank_exactly_as_filtered_votes(store):
    raters = ["rater-01", "rater-04", "rater-06"]
    label = sorted(set(store.vote_tallies()["settings_a"]))[0]
    for chosen in (
        {"raters": raters},
        {"settings": [label]},
        {"checkpoints": ["synthetic-ckpt-100", "synthetic-ckpt-300"]},
    ):
        frames = [filter_ratings(f, **chosen) for f in (store.battles(), store.vote_tallies(), store.vote_sequence())]
        _same_standings(*frames)


def test_tally_bootstrap_is_on_pair_counts(store):
    tally = store.vote_tallies()
    assert len(tally) < 2000  # fewer rows than votes: the bootstrap never resamples rows
    samples = scoring.bootstrap_bradley_terry(tally, 50, seed=7)
    assert samples.equals(scoring.bootstrap_bradley_terry(store.battles(), 50, seed=7))


def test_snapshot_rereads_only_when_the_mark_moves(store):
    first = snapshot(store)
    assert snapshot(store) is first and ranked(first) is ranked(first)
    view = ranked(first, by="settings")
    assert view.standings.votes < 2000  # checkpoint-only pairs with equal settings do not rank settings
    gens = store.generations()
    same_prompt = gens[gens["prompt"] == gens["prompt"].iloc[0]].sort_values("id")
    a, b = (int(g) for g in same_prompt["id"].iloc[[0, 2]])  # two checkpoints, the same settings
    before = ranked(first).standings.votes
    vote = store.add_vote(a, b, "a", rater="newcomer")
    second = snapshot(store)
    assert second is not first and second.mark[0] == vote and ranked(second).standings.votes == before + 1
    store.delete_vote(vote)
    third = snapshot(store)
    assert third is not second and third.mark[1] == 2000 and ranked(third).standings.votes == before


def test_reasons_are_read_for_the_votes_asked(store):
    sequence = store.vote_sequence()
    ids = sequence.loc[sequence["has_reason"], "vote_id"].tail(3).tolist()
    reasons = store.vote_reasons(ids)
    assert [r["vote_id"] for r in reasons] == sorted(ids, reverse=True)
    battles = store.battles().set_index("vote_id")
    for r in reasons:
        row = battles.loc[r["vote_id"]]
        assert (r["model_a"], r["model_b"], r["winner"], r["reason"]) == (
            row.model_a,
            row.model_b,
            row.winner,
            row.reason,
        )
