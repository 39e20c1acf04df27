"""Preference per setting in the Streamlit dashboard, through AppTest on a real store: the Rate page serves and
records settings pairs, the Leaderboard ranks settings, and the Lab page charts preference against temperature.

Run: .venv/bin/python -m pytest -q tests/test_dashboard_preference.py
The store is emptied, then holds "base" answering two prompts at temperatures 0.2 and 0.9 (raters prefer 0.2) and
"tuned" at 0.2; the seeded dashboard fixtures (tests/fixtures/dashboard.py) give the real engine for the Lab page.
"""

from __future__ import annotations

import json

import pytest

from tests.test_dashboard import frame_with, on
from workbench.store import Store, settings_label

pytestmark = pytest.mark.slow  # the dashboard fixtures seed a store with the real model once per session

COLD, WARM = {"temperature": 0.2, "seed": 3}, {"temperature": 0.9, "seed": 3}


def _hand_set(url: str, votes: bool = True) -> dict:
    with Store(url) as store:
        ids = {
            (c, t, p): store.add_generation(c, p, f"{c} at {s['temperature']} on {p}", s)
            for c, t, s in (("base", "cold", COLD), ("base", "warm", WARM), ("tuned", "cold", COLD))
            for p in ("p1", "p2")
        }
        if votes:
            for p in ("p1", "p2"):
                for rater in ("r1", "r2"):
                    upset = p == "p2" and rater == "r2"
                    store.add_vote(ids["base", "cold", p], ids["base", "warm", p], "b" if upset else "a", rater=rater)
            store.add_vote(ids["base", "cold", "p1"], ids["tuned", "cold", "p1"], "b", rater="r1")
    return ids


def test_rate_page_serves_and_records_a_settings_pair(dash):
    dash.empty()
    _hand_set(dash.settings.db_url, votes=False)
    at = on("rate")
    at.radio(key="rate-kind").set_value("Pairwise: same checkpoint, two generation settings").run()
    item = at.session_state["rate-pair"][1]
    assert item.a.checkpoint == item.b.checkpoint == "base" and item.a.prompt == item.b.prompt
    assert {item.a.settings["temperature"], item.b.settings["temperature"]} == {0.2, 0.9}
    at.button(key=f"vote-left-{item.key}").click().run()
    assert not at.exception
    with Store(dash.settings.db_url) as store:
        votes = store.votes()
    assert len(votes) == 1 and votes["model_a"][0] == votes["model_b"][0] == "base"
    assert not votes["same_settings"][0]


def test_leaderboard_ranks_settings_and_the_lab_charts_preference(dash):
    dash.empty()
    _hand_set(dash.settings.db_url)
    at = on("leaderboard")
    at.button_group(key="lb-by").set_value("settings").run()
    assert not at.exception
    board = frame_with(at, "rating")
    assert list(board["model"]) == [settings_label(COLD), settings_label(WARM)] and board["battles"].sum() == 8
    at.switch_page("pages/lab.py").run()
    assert not at.exception, [e.value for e in at.exception]
    table = frame_with(at, "win_rate")
    assert list(table["value"]) == [0.2, 0.9] and list(table["battles"]) == [4, 4]  # the two-checkpoint vote left out
    assert table.loc[0, "rating"] > table.loc[1, "rating"]
    figure = next(
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if "preference" in json.loads(c.proto.spec)["layout"].get("yaxis", {}).get("title", {}).get("text", "")
    )
    assert figure["data"][0]["x"] == [0.2, 0.9]
