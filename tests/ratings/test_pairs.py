"""The sampler served from a real store (workbench/ratings/pairs.py and Store.next_pair_for(choose=...)).

Run: .venv/bin/python -m pytest -q tests/ratings/test_pairs.py
SQLite stores filled with synthetic votes (`workbench.bench.votes.fill_votes`: checkpoints 60 points apart): an
unsettled ranking serves only pairs with an open contestant, a settled one serves nothing under adaptive pairs (and
the Arena's sentence says so) but still serves under uniform pairs; the fit is cached on the votes' mark; judges'
votes do not count; settings pairs are chosen by settings label.
"""

from __future__ import annotations

import random
import time

import pytest
from sqlalchemy import insert

from workbench.bench.votes import fill_votes
from workbench.config import Settings
from workbench.ratings import pairs
from workbench.store import Store
from workbench.store.schema import Vote

NAMES = [f"synthetic-ckpt-{k}00" for k in range(1, 5)]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Two stores of four checkpoints: 600 votes (one neighbour pair still open) and 2,400 (settled)."""
    folder = tmp_path_factory.mktemp("pairs")
    urls = {}
    for name, votes, prompts in (("open", 600, 10), ("settled", 2400, 20)):
        urls[name] = f"sqlite:///{folder / name}.db"
        with Store(urls[name]) as store:
            fill_votes(store, votes=votes, checkpoints=4, prompts=prompts, raters=20)
    return urls


def settings_for(url: str, tmp_path, **more) -> Settings:
    return Settings(home=tmp_path, db_url=url, **more)


def test_an_open_ranking_serves_only_pairs_with_an_open_contestant(stores, tmp_path):
    settings = settings_for(stores["open"], tmp_path)
    with Store(stores["open"]) as store:
        state = pairs.current_fit(store, settings)
        open_ = state.rule.unsettled
        assert not state.rule.settled and len(open_) == 2  # one neighbour pair still open, the others settled
        served = set()
        for seed in range(30):
            item = pairs.next_pair(store, settings, "zoe", rng=random.Random(seed))
            assert item.a.prompt == item.b.prompt and item.a.checkpoint != item.b.checkpoint
            served.add(tuple(sorted((item.a.checkpoint, item.b.checkpoint))))
        assert all(set(pair) & open_ for pair in served) and tuple(sorted(open_)) in served
        closed = tuple(sorted(set(NAMES) - open_))
        assert closed not in served  # both of its contestants are settled: never asked about again
        assert pairs.arena_note(store, settings) is None


def test_a_settled_ranking_serves_nothing_but_uniform_pairs_go_on(stores, tmp_path):
    adaptive = settings_for(stores["settled"], tmp_path)
    with Store(stores["settled"]) as store:
        assert pairs.current_fit(store, adaptive).rule.settled
        assert pairs.next_pair(store, adaptive, "zoe") is None
        note = pairs.arena_note(store, adaptive)
        assert note.startswith("The ranking of checkpoints is settled after 2,400 votes")
        uniform = settings_for(stores["settled"], tmp_path, pairs="uniform")
        assert pairs.next_pair(store, uniform, "zoe") is not None and pairs.arena_note(store, uniform) is None
        assert pairs.pick(store, adaptive, NAMES) is None  # no new pair needs making either
        newcomer = pairs.pick(store, adaptive, [*NAMES, "fresh-run"], rng=random.Random(1))
        assert "fresh-run" in newcomer  # a checkpoint without votes is placed first


def test_the_fit_is_cached_on_the_votes_mark(stores, tmp_path, monkeypatch):
    settings = settings_for(stores["open"], tmp_path, settle_half_width=7)  # a key of its own in the cache
    with Store(stores["open"]) as store:
        reads = []
        real = store.vote_tallies
        monkeypatch.setattr(store, "vote_tallies", lambda: reads.append(1) or real())
        first = pairs.current_fit(store, settings)
        assert pairs.current_fit(store, settings) is first and len(reads) == 1
        gens = store.generations()
        a, b = (int(gens.loc[gens["checkpoint"] == n, "id"].iloc[0]) for n in NAMES[:2])
        judge = {"generation_a_id": a, "generation_b_id": b, "winner": "a", "shown_left": "a", "rater": "judge:smol"}
        with store._write() as s:  # as the LLM judge stores its verdicts (issue 20): a rater named judge:<model>
            s.execute(insert(Vote), [judge])  # one vote among 600: under REFRESH_SHARE, so the fit stays cached
        assert pairs.current_fit(store, settings) is first and len(reads) == 1
        monkeypatch.setattr(pairs, "REFRESH_S", 0.0)  # once the fit is old, any new vote refits
        assert pairs.current_fit(store, settings) is first  # served while a background thread refits
        for _ in range(200):
            if len(reads) == 2 and not pairs._REFITTING:
                break
            time.sleep(0.05)
        again = pairs.current_fit(store, settings)
        assert again is not first and len(reads) == 2
        assert again.votes == first.votes  # a judge's vote is not a person's: the stopping rule ignores it
        monkeypatch.setattr(pairs, "REFRESH_IDLE_S", 0.0)  # an old fit is redone even when no vote arrived
        assert pairs.current_fit(store, settings, wait=True) is not again and len(reads) == 3


def test_settings_pairs_are_chosen_by_settings_label(tmp_path):
    url = f"sqlite:///{tmp_path / 'settings.db'}"
    temps = [{"temperature": t, "seed": 0} for t in (0.2, 0.7, 1.2)]
    with Store(url) as store:
        fill_votes(store, votes=300, checkpoints=1, prompts=10, raters=10, settings=temps, settings_pairs=True)
        seen = []

        def choose(offered):
            seen.extend(offered)
            return next(p for p in offered if all("temp 1.2" not in label for label in p))

        item = store.next_pair_for("zoe", differ="settings", choose=choose)
        assert len(seen) == 3 and all(" · " in label for pair in seen for label in pair)
        assert {item.a.settings["temperature"], item.b.settings["temperature"]} == {0.2, 0.7}
        assert store.next_pair_for("zoe", differ="settings", choose=lambda offered: None) is None
        fit = pairs.current_fit(store, settings_for(url, tmp_path), "settings")
        assert len(fit.models) == 3 and fit.order[0].startswith("temp 1.2")  # later settings are stronger
