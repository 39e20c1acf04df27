"""The app's Leaderboard tab (workbench/ui/leaderboard.py): the raters table and the sync dataset are the owner's.

Run: .venv/bin/python -m pytest -q tests/ui/test_leaderboard_tab.py
The tab's refresh function is called as Gradio calls it, with a request from this machine (the owner of an app on
127.0.0.1) and from a visitor's address (the app on 0.0.0.0): the owner gets votes per rater with the flagged
visitor, the cap applied to the ratings and the dataset's id; a visitor gets neither the table nor the dataset's id.
No model is loaded.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from workbench.config import Settings
from workbench.store import Store
from workbench.ui.context import AppContext
from workbench.ui.leaderboard import _names, make_refresh_fn


def request(host: str) -> SimpleNamespace:
    return SimpleNamespace(client=SimpleNamespace(host=host), headers={"host": "localhost:7860"}, session_hash="s1")


def fill(url: str) -> None:
    """Three owner-named raters who mostly prefer run-a, and one visitor who votes for base 30 times."""
    with Store(url) as store:
        for k in range(30):
            a = store.add_generation("run-a", f"Q{k}?", f"A{k}.", None)
            b = store.add_generation("base", f"Q{k}?", f"B{k}.", None)
            for i, rater in enumerate(("alice", "bob", "carol")):
                store.add_vote(a, b, "b" if (k + i) % 6 == 0 else "a", rater=rater)
            store.add_vote(a, b, "b", rater=None, session="visitor-000000000001")


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_the_raters_table_and_the_dataset_are_the_owners(tmp_path, host):
    settings = Settings(
        home=tmp_path, host=host, sync_dataset="me/secret-votes", hf_token="hf_test_token_123", rater_cap=10
    )
    fill(settings.db_url)
    refresh = make_refresh_fn(AppContext(settings))
    visitor = request("203.0.113.9")
    _, _, _, _, persistence, note, raters = refresh("checkpoint", request("127.0.0.1"))
    if host == "127.0.0.1":  # the owner
        table = raters["value"]
        assert raters["visible"] and set(table["rater"]) == {"alice", "bob", "carol", "anon-visitor-00000000"}
        flagged = table.loc[table["flagged"], "rater"].tolist()
        assert flagged == ["anon-visitor-00000000"] and "far beyond chance" in note and _names(flagged) in note
        assert table.set_index("rater").loc["anon-visitor-00000000", "counted"] == 10  # capped
        assert "me/secret-votes" in persistence
    summary, _, _, _, persistence, note, raters = refresh("checkpoint", visitor)
    assert not raters["visible"] and raters["value"] is None and note == ""
    assert "me/secret-votes" not in persistence and "**120** pairwise votes" in summary


def test_the_header_tells_the_owner_when_voter_ids_will_not_survive_a_restart(tmp_path, monkeypatch):
    from workbench.ui.demo import _store_warning

    monkeypatch.setattr("workbench.config.SPACE_DATA", tmp_path / "no-data")
    synced = {"home": tmp_path, "space": True, "sync_dataset": "me/votes", "hf_token": "hf_test_token_123"}
    assert _store_warning(Settings(**synced), owner=True).startswith("**Voter ids change at a restart:**")
    assert _store_warning(Settings(**synced), owner=False) == ""  # a working sync: nothing for visitors
    assert _store_warning(Settings(**synced, voter_key="k" * 32), owner=True) == ""
