"""Preference per setting: settings-only pairs, and leaderboards that rank settings, on a hand-made vote set.

Run: .venv/bin/python -m pytest -q tests/ratings/test_preference.py
A real store (SQLite, and PostgreSQL through the `db_url` fixture): checkpoint "base" answers four prompts at
temperatures 0.2, 0.7 and 1.2, and "tuned" at 0.7. Settings pairs come from one checkpoint and one prompt; raters
prefer 0.7 to 0.2 (3 of 4) and 0.2 to 1.2 (3 of 4) and 0.7 to 1.2 (4 of 4), and every ranking (by settings, by
checkpoint + settings, the Lab's preference table and chart, `leaderboard --by settings --json`) says so.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ratings.by_hand import map_gap
from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings
from workbench.ratings.snapshot import ranked, snapshot
from workbench.store import Store, settings_label
from workbench.studio.preference import preference_by_setting
from workbench.views import plots

ROOT = Path(__file__).resolve().parents[2]
TEMPS = (0.2, 0.7, 1.2)
PROMPTS = ("p1", "p2", "p3", "p4")


def _settings(t: float) -> dict:
    return {"temperature": t, "seed": 5}


def _label(t: float) -> str:
    return settings_label(_settings(t))


@pytest.fixture
def made(db_url):
    """(store url, {(checkpoint, temperature, prompt): generation id}) before any vote."""
    with Store(db_url) as store:
        ids = {
            ("base", t, p): store.add_generation("base", p, f"base at {t} answers {p}", _settings(t))
            for t in TEMPS
            for p in PROMPTS
        }
        ids.update(
            {("tuned", 0.7, p): store.add_generation("tuned", p, f"tuned on {p}", _settings(0.7)) for p in PROMPTS}
        )
    return db_url, ids


def _vote_hand_set(store: Store, ids: dict) -> None:
    """0.7 beats 0.2 on p1-p3, 0.2 beats 1.2 on p1-p3 (the other way on p4), 0.7 beats 1.2 everywhere."""
    for winner, loser in ((0.7, 0.2), (0.2, 1.2), (0.7, 1.2)):
        for p in PROMPTS:
            upset = p == "p4" and (winner, loser) != (0.7, 1.2)
            a, b = ids["base", winner, p], ids["base", loser, p]
            store.add_vote(a, b, "b" if upset else "a", rater="r1", shown_left="ab"[PROMPTS.index(p) % 2])
    store.add_vote(ids["tuned", 0.7, "p1"], ids["base", 1.2, "p1"], "a", rater="r2")  # two checkpoints


def test_settings_pairs_come_from_one_checkpoint_and_one_prompt(made):
    url, _ = made
    with Store(url) as store:
        seen = []
        while (item := store.next_pair_for("rita", differ="settings")) is not None:
            assert item.a.checkpoint == item.b.checkpoint == "base"
            assert item.a.prompt == item.b.prompt and item.a.settings != item.b.settings
            seen.append((item.a.prompt, item.a.settings["temperature"], item.b.settings["temperature"]))
            store.vote_on_pair(item, "left", rater="rita")
        assert len(seen) == len(set(seen)) == len(PROMPTS) * 3  # every prompt's three pairs of temperatures, once
        item = store.next_pair_for("carl")  # the default: two checkpoints, the same settings
        assert {item.a.checkpoint, item.b.checkpoint} == {"base", "tuned"} and item.a.settings == item.b.settings
        with pytest.raises(WorkbenchError, match="Pairs differ in checkpoint or settings"):
            store.next_pair_for("carl", differ="prompt")


def test_grouped_leaderboards_rank_the_preferred_setting_first(made):
    url, ids = made
    with Store(url) as store:
        _vote_hand_set(store, ids)
        snap = snapshot(store)
    by_settings = ranked(snap, by="settings", bootstrap=200).standings.board
    assert list(by_settings["model"]) == [_label(0.7), _label(0.2), _label(1.2)]
    assert by_settings["battles"].sum() == 2 * 13  # the settings pairs and the cross-checkpoint vote
    both = ranked(snap, by="both", bootstrap=200).standings.board
    assert both["model"].iloc[0] in {f"base · {_label(0.7)}", f"tuned · {_label(0.7)}"}
    assert both["model"].iloc[-1] == f"base · {_label(1.2)}"
    by_checkpoint = ranked(snap, by="checkpoint", bootstrap=0).standings
    assert by_checkpoint.votes == 1 and list(by_checkpoint.board["model"]) == ["tuned", "base"]


def test_the_lab_table_counts_only_settings_pairs_against_the_setting(made):
    url, ids = made
    with Store(url) as store:
        _vote_hand_set(store, ids)
        snap = snapshot(store)
    table = preference_by_setting(snap, axis="temperature", bootstrap=200)
    assert list(table["value"]) == list(TEMPS) and list(table["settings"]) == [_label(t) for t in TEMPS]
    assert list(table["battles"]) == [8, 8, 8]  # the cross-checkpoint vote is left out
    rating = table.set_index("value")["rating"]
    assert rating[0.7] > rating[0.2] > rating[1.2]
    assert table["lower"].le(table["rating"]).all() and table["rating"].le(table["upper"]).all()
    assert preference_by_setting(snap, checkpoint="tuned").empty
    assert list(preference_by_setting(snap, axis="top_p", bootstrap=0)["value"]) == [GenerationSettings().top_p] * 3
    with pytest.raises(WorkbenchError, match="against temperature"):
        preference_by_setting(snap, axis="colour")
    trace = plots.preference_chart(table, "temperature").data[0]
    assert list(trace.x) == list(TEMPS) and list(trace.y) == pytest.approx(list(table["rating"]))


def test_two_settings_rate_as_bradley_terry_says(made):
    url, ids = made
    with Store(url) as store:
        for p in PROMPTS:  # 0.7 wins 3 of 4 against 0.2: the MLE puts them 400 log10(3) = 191 apart, the prior less
            store.add_vote(ids["base", 0.7, p], ids["base", 0.2, p], "b" if p == "p4" else "a", rater="r1")
        table = preference_by_setting(snapshot(store), bootstrap=0).set_index("value")
    gap = table.loc[0.7, "rating"] - table.loc[0.2, "rating"]
    assert gap == pytest.approx(map_gap(3, 1), abs=0.1) and 100 < gap < 400 * math.log10(3)


def test_cli_ranks_settings_from_the_store(made):
    url, ids = made
    with Store(url) as store:
        _vote_hand_set(store, ids)
    env = {**os.environ, "WORKBENCH_DB_URL": url}
    cmd = [sys.executable, "-m", "workbench", "leaderboard", "--by", "settings", "--bootstrap", "100", "--json"]
    out = json.loads(subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    assert out["by"] == "settings" and out["battles"] == 13
    assert [m["model"] for m in out["models"]] == [_label(0.7), _label(0.2), _label(1.2)]
    bad = subprocess.run([*cmd[:4], "--by", "prompt"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice: 'prompt'" in bad.stderr


def test_votes_on_an_adapters_strengths_chart_against_the_strength(db_url):
    """Settings stored at strength 1 leave the strength out (so older settings keep their hash): charted as 1."""
    with Store(db_url) as store:
        ids = {
            s: store.add_generation("tuned", "p1", f"tuned at {s}", {"temperature": 0.7, "adapter_strength": s})
            for s in (0.5, 1.0)
        }
        store.add_vote(ids[1.0], ids[0.5], "a", rater="r1")
        table = preference_by_setting(snapshot(store), axis="adapter_strength", bootstrap=0)
    assert list(table["value"]) == [0.5, 1.0] and table.set_index("value")["win_rate"][1.0] == 1.0
