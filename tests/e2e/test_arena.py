"""The Gradio app's Arena tab: blind pairs from the store, one vote per pair, names revealed after the vote.

Run: .venv/bin/python -m pytest -q tests/e2e/test_arena.py
In process: with no pair in the store, the Arena answers a Vicuna-bench prompt with two checkpoints of the real
model, stores both and serves them. Through gradio_client against `python app.py`: a pair is served without
names, the same vote sent twice (a double click) is recorded once, and the status reveals the names. In the
browser: a visitor votes and the tab is saved as tests/artifacts/arena.png.
"""

from __future__ import annotations

import pytest

from tests.fixtures.arena import shown_prompt, text_of
from tests.fixtures.dashboard import SEEDED
from workbench.store import Store
from workbench.studio import compare
from workbench.views.markup import plain_markdown

pytestmark = pytest.mark.slow

PROMPT = "Name a fruit."


def test_arena_makes_a_pair_when_the_store_has_none(dash, monkeypatch):
    from workbench.ui import arena as arena_tab
    from workbench.ui.context import AppContext

    dash.empty()
    monkeypatch.setattr(arena_tab, "ARENA_SETTINGS", SEEDED.replace(max_new_tokens=8))
    arena = arena_tab.Arena(AppContext(dash.settings))
    item = arena.next_pair("erin", "session-0123456789")
    assert item is not None and item.a.checkpoint != item.b.checkpoint and item.a.prompt == item.b.prompt
    assert item.a.prompt in {p["text"] for p in arena.store().prompts("vicuna-bench")}
    made = arena.store().generations()
    assert len(made) == 2 and (made["max_new_tokens"] == 8).all() and made["prompt_id"].notna().all()
    again = arena.next_pair("erin", "session-0123456789")  # not rated yet: served again, nothing generated
    assert {again.a.id, again.b.id} == {item.a.id, item.b.id} and len(arena.store().generations()) == 2


def test_arena_makes_a_settings_pair_from_one_checkpoint(dash, monkeypatch):
    from workbench.ui import arena as arena_tab
    from workbench.ui.context import AppContext

    dash.empty()
    pairs = tuple(SEEDED.replace(max_new_tokens=8, temperature=t) for t in (0.3, 1.1))
    monkeypatch.setattr(arena_tab, "ARENA_SETTINGS_PAIRS", pairs)
    arena = arena_tab.Arena(AppContext(dash.settings))
    item = arena.next_pair("erin", "session-0123456789", differ="settings")
    assert item.a.checkpoint == item.b.checkpoint and item.a.prompt == item.b.prompt
    # the base model's pair differs in temperature; an adapter's in its strength, at the middle temperature
    temperatures = {item.a.settings["temperature"], item.b.settings["temperature"]}
    strengths = {item.a.settings.get("adapter_strength", 1.0), item.b.settings.get("adapter_strength", 1.0)}
    assert (temperatures, strengths) == ({0.3, 1.1}, {1.0}) or (temperatures == {1.1} and len(strengths) == 2)
    assert len(arena.store().generations()) == 2
    assert arena.next_pair("erin", "session-0123456789", generate=False) is None  # no two-checkpoint pair made


@pytest.fixture
def seeded_pair(engine, dash_checkpoints, wb_settings):
    """Two real outputs for one prompt in the store the app uses; yields the votes already there."""
    with Store.open(wb_settings) as store:
        for checkpoint in dash_checkpoints[:2]:
            compare.generate(engine, store, compare.Request(PROMPT, checkpoint, SEEDED))
        yield len(store.votes())


def test_arena_vote_is_recorded_once_and_reveals_the_names(gradio_app, seeded_pair, wb_settings):
    from gradio_client import Client

    client = Client(gradio_app.url, verbose=False)
    try:
        refused = client.predict("<b>x</b>", api_name="/arena_next")
        assert "A rater name must be" in refused[2]  # one sentence in the status, nothing served
        left_chat, right_chat, status, reason = client.predict("", api_name="/arena_next")
        prompt, left, right = shown_prompt(left_chat), text_of(left_chat[-1]), text_of(right_chat[-1])
        assert prompt == shown_prompt(right_chat) and left and right and reason == ""
        assert status.startswith("Which answer is better?")
        first = client.predict("fluent", "", api_name="/vote_right")
        again = client.predict("fluent", "", api_name="/vote_right")  # a double click: same pair, same key
    finally:
        client.close()
    with Store.open(wb_settings) as store:
        votes = store.votes()
    assert len(votes) == seeded_pair + 1
    vote = votes.iloc[-1]
    left_side = vote["shown_left"]
    right_side = "b" if left_side == "a" else "a"
    assert vote[f"output_{left_side}"] == left and vote[f"output_{right_side}"] == right
    assert vote["winner"] == right_side and vote["reason"] == "fluent" and vote["rater"].startswith("anon-")
    for name in (vote[f"model_{left_side}"], vote[f"model_{right_side}"]):
        assert name not in f"{prompt}{left}{right}{status}"  # hidden until the vote
    assert first == again and first.startswith("Recorded: B is better.")
    assert f"A was **{plain_markdown(vote[f'model_{left_side}'])}**" in first  # two checkpoints: named
    assert f"B was **{plain_markdown(vote[f'model_{right_side}'])}**" in first


@pytest.mark.browser
def test_arena_in_the_browser(page, gradio_app, seeded_pair, wb_settings, artifacts):
    from playwright.sync_api import expect

    page.goto(gradio_app.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Arena").click()
    page.locator("#arena-rater input, #arena-rater textarea").fill("frank")
    page.locator("#arena-next").click()
    status = page.locator("#arena-status")
    expect(status).to_contain_text("Which answer is better?")
    vote_a = page.locator("#arena-vote-left")
    expect(vote_a).to_be_enabled()
    page.locator("#arena-reason input, #arena-reason textarea").fill("more to the point")
    vote_a.dblclick()
    expect(status).to_contain_text("Recorded: A is better.")
    expect(vote_a).to_be_disabled()
    with Store.open(wb_settings) as store:
        votes = store.votes(rater="frank")
    assert len(votes) == 1 and votes["reason"][0] == "more to the point"
    page.screenshot(path=artifacts / "arena.png", full_page=True)
