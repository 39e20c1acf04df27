"""LLM judges on the Leaderboard page, through AppTest on a real store: people's votes only by default, "Whose votes"
counts judges' when asked, and the agreement view shows the numbers `judge --json` gives.

Run: .venv/bin/python -m pytest -q tests/test_dashboard_judge.py
The store holds the hand-computed case of tests/ratings/test_agreement.py: 7 people's votes, 4 verdicts of
judge:smol (both orders recorded) and 1 of judge:other.
"""

from __future__ import annotations

import pytest

from tests.ratings.test_agreement import JUDGE, seed_case
from tests.test_dashboard import frame_with, on, texts
from workbench.store import Store

pytestmark = pytest.mark.slow  # the dashboard fixtures seed a store with the real model once per session


def test_leaderboard_counts_people_by_default_and_shows_the_judges_agreement(dash):
    dash.empty()
    with Store(dash.settings.db_url) as store:
        seed_case(store)
    at = on("leaderboard")
    assert [m.value for m in at.metric][:3] == ["7", "0", "3"]  # votes, scores, raters: people only
    assert list(at.multiselect(key="lb-raters").options) == ["alice", "bob", "carol"]
    assert any(
        t.startswith("judge:other: 1 verdict; none of them records its verdicts in both orders") for t in texts(at)
    )
    assert frame_with(at, "judge vs people").set_index("")["judge vs people"].tolist()[:2] == ["1", "3"]
    at.selectbox(key="lb-judge").set_value(JUDGE).run()
    assert any(t.startswith(f"{JUDGE}: 4 verdicts; the same verdict in both orders for 75%") for t in texts(at))
    table = frame_with(at, "judge vs people").set_index("")
    assert table["judge vs people"].tolist() == ["3", "6", "50% of 6", "75% of 4", "0.250"]
    assert table["people vs people"].tolist() == ["2", "4", "25% of 4", "33% of 3", "-0.263"]
    at.button_group(key="lb-rater-kind").set_value("judges").run()
    assert not at.exception and [m.value for m in at.metric][:3] == ["5", "0", "2"]
    assert list(at.multiselect(key="lb-raters").options) == ["judge:other", JUDGE]
    at.button_group(key="lb-rater-kind").set_value("all").run()
    assert [m.value for m in at.metric][:3] == ["12", "0", "5"]
