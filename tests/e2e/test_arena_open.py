"""The whole loop inside app.py, as a fresh public Space has it: one checkpoint (the base model), visitors told apart
by the address our trusted proxy adds, admin actions closed. One `python app.py` for the module.

Run: .venv/bin/python -m pytest -q tests/e2e/test_arena_open.py
- gradio_client: a typed prompt, both answers streamed (in lock-step, no name anywhere), a second turn from each
  side's own answer, a vote whose receipt names the settings that differed, the leaderboard showing it; "Show a
  pair" with one checkpoint serves a settings pair and says why.
- raw queue calls by fn_index: a too-long prompt, a vote with nothing to vote on, the reply limit: one sentence each.
- Chromium: the Arena (tests/artifacts/arena_open.png) and the Leaderboard tab (leaderboard_tab.png); the chat's
  like, dislike and a regenerated reply kept, all stored under the visitor's id.
- The dashboard's Leaderboard page shows the same numbers as the app's tab (AppTest on the same store).
"""

from __future__ import annotations

import json
import sys

import pytest
from gradio_client import Client

from tests.fixtures.arena import shown_prompt, text_of
from tests.fixtures.queue import call, default_inputs, fn_index
from tests.fixtures.servers import ROOT, free_port, public_app_env, server_process
from workbench.access import voter_id, voter_secret
from workbench.registry import embedded_base
from workbench.store import Store
from workbench.store.records import anonymous_rater
from workbench.studio.battle import ONE_CHECKPOINT
from workbench.views.markup import plain_markdown

pytestmark = pytest.mark.slow

RATE = 6  # replies per visitor per minute: three battle turns
BASE = embedded_base().name  # the one checkpoint's name, which must not show before a vote


def visitor(address: str) -> dict[str, str]:
    """The header our one trusted proxy adds for a visitor at `address`."""
    return {"X-Forwarded-For": address}


@pytest.fixture(scope="module")
def space(wb_env, tmp_path_factory):
    """`python app.py` on an empty store with no adapter: what a fresh Space serves."""
    root = tmp_path_factory.mktemp("open-arena")
    db = f"sqlite:///{root / 'store.db'}"
    port = free_port()
    settings = {"adapters_dir": str(root / "adapters"), "arena_max_new_tokens": "12", "rate_limit": str(RATE)}
    env = public_app_env(wb_env, port, db, **settings)
    url = f"http://127.0.0.1:{port}/"
    with server_process([sys.executable, str(ROOT / "app.py")], url, env, "open_arena_app.log"):
        yield type("Space", (), {"url": url, "db": db, "folder": root})


def voter_of(space, address: str) -> str:
    """The anonymous rater the app makes of a visitor at `address`: keyed with the secret beside its store."""
    return anonymous_rater(voter_id(address, voter_secret(space.folder)))


def answers(update) -> tuple[str, str]:
    """The two sides' last answers in one arena_send update ("" before an answer has text)."""
    left, right = update[0], update[1]
    last = [text_of(side[-1]) if side and side[-1]["role"] == "assistant" else "" for side in (left, right)]
    return last[0], last[1]


def test_a_typed_prompt_streams_both_goes_on_a_turn_and_the_vote_reaches_the_leaderboard(space):
    client = Client(space.url, verbose=False, headers=visitor("10.5.0.1"))
    try:
        job = client.submit("Name a fruit.", "", "checkpoint", api_name="/arena_send")
        updates = list(job)
        left, right, status, _ = job.result()
        assert len(updates) >= 3 and answers(updates[-1]) == (text_of(left[-1]), text_of(right[-1]))
        first_text = next(answers(u) for u in updates if any(answers(u)))
        assert all(first_text), "one side's text showed before the other's: its speed would tell"
        assert ONE_CHECKPOINT in status and "Which answer is better?" in status
        assert BASE not in json.dumps(updates)  # no name in anything the page or the API got

        job = client.submit("And one more?", "", "checkpoint", api_name="/arena_send")
        left2, right2, _, _ = job.result()
        assert [m["role"] for m in left2] == ["user", "assistant", "user", "assistant"]
        assert text_of(left2[1]) == text_of(left[-1]) and text_of(right2[1]) == text_of(right[-1])  # own history
        receipt = client.predict("juicier", "", api_name="/vote_right")
        board_by_checkpoint = client.predict("checkpoint", api_name="/leaderboard")
        board_by_settings = client.predict("settings", api_name="/leaderboard")
    finally:
        client.close()
    assert receipt.startswith(
        f"Recorded: B is better. Both answers came from **{plain_markdown(BASE)}**; A: temperature"
    )
    assert "A was" not in receipt and ", B: temperature" in receipt
    with Store(space.db) as store:
        votes, made = store.votes(), store.generations()
    vote = votes.iloc[-1]
    assert vote["reason"] == "juicier" and vote["rater"] == voter_of(space, "10.5.0.1")
    assert len(made[made["origin"] == "battle"]) == 4 and vote["messages"] != vote["messages_b"]
    summary = board_by_checkpoint[0]
    assert "1 more vote compares two settings of one checkpoint: rank by Generation settings" in summary
    rows = board_by_settings[1]["data"]
    assert len(rows) == 2 and sum(r[5] for r in rows) >= 2  # two settings, each in the battle voted on


def test_show_a_pair_with_one_checkpoint_serves_a_settings_pair_and_says_why(space):
    client = Client(space.url, verbose=False, headers=visitor("10.5.0.2"))
    try:
        left, right, status, reason = client.predict("", "checkpoint", api_name="/arena_next")
        receipt = client.predict("", "", api_name="/vote_tie")
    finally:
        client.close()
    assert status.startswith(ONE_CHECKPOINT) and "Which answer is better?" in status and reason == ""
    assert shown_prompt(left) and shown_prompt(left) == shown_prompt(right) and BASE not in json.dumps([left, right])
    assert "Both answers came from" in receipt and "temperature" in receipt and "Error" not in receipt


def test_raw_queue_calls_get_one_sentence_each(space):
    url = space.url
    send = fn_index(url, "arena_send")
    data = default_inputs(url, send)
    data[0] = "x" * 8_001
    refused = call(url, send, data, visitor("10.5.0.3"))  # past the message box's bound: refused at the door
    assert not refused.success and "is 8,001 characters; the limit here is 8,000" in refused.error
    vote = fn_index(url, "vote_left")
    nothing = call(url, vote, default_inputs(url, vote), visitor("10.5.0.3"))
    assert nothing.success and "nothing to vote on" in nothing.output[1]
    data[0] = "Say yes."
    for _ in range(RATE // 2):  # each call is a new session: a new battle, two replies of the visitor's budget
        served = call(url, send, data, visitor("10.5.0.4"))
        assert served.success and "Which answer is better?" in served.output[3]
        assert BASE not in json.dumps(served.output)
    limited = call(url, send, data, visitor("10.5.0.4"))
    assert limited.success and f"limit of {RATE} replies per minute" in limited.output[3]


@pytest.mark.browser
def test_the_arena_and_the_leaderboard_in_the_browser(space, page, artifacts):
    from playwright.sync_api import expect

    page.set_extra_http_headers(visitor("10.5.0.5"))
    page.goto(space.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Arena").click()
    expect(page.locator("#arena-mode")).to_contain_text("Only one checkpoint is served here")
    box = page.locator("#arena-message textarea")
    box.fill("Write one line about the sea.")
    box.press("Enter")
    status = page.locator("#arena-status")
    expect(status).to_contain_text("Which answer is better?")
    for side in ("#arena-left", "#arena-right"):
        expect(page.locator(f"{side} [data-testid='bot']")).to_have_count(1)
    assert BASE not in " ".join(page.locator("#arena-left, #arena-right, #arena-status").all_inner_texts())
    page.screenshot(path=artifacts / "arena_open.png", full_page=True)
    page.locator("#arena-vote-right").click()
    expect(status).to_contain_text("Recorded: B is better. Both answers came from")
    page.get_by_role("tab", name="Leaderboard").click()
    summary = page.locator("#lb-summary")
    expect(summary).to_contain_text("pairwise vote")
    expect(page.locator("#lb-by")).to_be_visible()
    page.locator("#lb-by").get_by_role("radio", name="Generation settings").check()
    expect(summary).to_contain_text("ranked by generation settings")
    expect(page.locator("#lb-board")).to_contain_text("temp ")
    expect(page.locator("#lb-chart .js-plotly-plot")).to_be_visible()  # the ratings with their intervals
    page.screenshot(path=artifacts / "leaderboard_tab.png", full_page=True)


@pytest.mark.browser
def test_likes_and_a_kept_regenerate_are_stored_under_the_visitor(space, page):
    from playwright.sync_api import expect

    address = "10.5.0.6"
    page.set_extra_http_headers(visitor(address))
    page.goto(space.url, wait_until="domcontentloaded")
    page.locator("#max-new-tokens input[type=number]").fill("12")
    page.locator("#max-new-tokens input[type=number]").press("Enter")
    box, stats = page.locator("#msg textarea"), page.locator("#stats")
    box.fill("Name a colour.")
    box.press("Enter")
    expect(stats).to_contain_text("tokens")
    bot = page.locator("#chatbot [data-testid='bot']")
    first = bot.last.inner_text()
    page.locator("#chatbot").get_by_role("button", name="Like").last.click()
    page.locator("#regenerate").click()
    expect(stats).to_contain_text("Generating")
    expect(stats).to_contain_text("tokens")
    box.fill("Why that one?")
    box.press("Enter")  # going on from the new reply keeps it
    expect(bot).to_have_count(2)
    expect(stats).to_contain_text("tokens")
    page.locator("#chatbot").get_by_role("button", name="Dislike").last.click()
    rater = voter_of(space, address)
    with Store(space.db) as store:
        expect_rows(store, rater, 3)
        rows = [r for r in store.feedback_rows() if r["rater"] == rater]
        chat = store.generations()
    kinds = [r["kind"] for r in rows]
    assert sorted(kinds) == ["dislike", "like", "preferred"], kinds
    like, preferred = (next(r for r in rows if r["kind"] == k) for k in ("like", "preferred"))
    outputs = dict(zip(chat["uid"], chat["output"], strict=True))
    assert outputs[like["generation_uid"]].strip() == first.strip()  # the reply liked, as it was shown
    assert preferred["other_generation_uid"] == like["generation_uid"]  # the regenerated one replaced it
    assert set(chat.loc[chat["uid"].isin([preferred["generation_uid"]]), "origin"]) == {"chat"}


def expect_rows(store: Store, rater: str, n: int, timeout_s: float = 30) -> None:
    """Wait until `rater` has `n` feedback rows (the like is recorded by its own event, after the click)."""
    import time

    deadline = time.monotonic() + timeout_s
    while sum(r["rater"] == rater for r in store.feedback_rows()) < n and time.monotonic() < deadline:
        time.sleep(0.2)


def test_the_dashboard_shows_the_same_numbers(space, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    client = Client(space.url, verbose=False, headers=visitor("10.5.0.7"))
    try:  # at least one settings vote, whatever ran before
        client.predict("", "settings", api_name="/arena_next")
        client.predict("", "", api_name="/vote_left")
        _, board, *_ = client.predict("settings", api_name="/leaderboard")
    finally:
        client.close()
    monkeypatch.setenv("WORKBENCH_DB_URL", space.db)
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90).run()
    at.switch_page("pages/leaderboard.py").run()
    at.button_group(key="lb-by").set_value("settings").run()
    assert not at.exception, [e.value for e in at.exception]
    page_board = next(d.value for d in at.dataframe if "rating" in d.value.columns).set_index("model")
    app_board = {row[1]: row for row in board["data"]}  # rank, model, rating, lower, upper, battles, ...
    assert set(app_board) == set(page_board.index) and len(app_board) >= 2
    for model, (rank, _, rating, lower, upper, battles, *_) in app_board.items():
        shown = page_board.loc[model]
        assert (rank, battles) == (shown["rank"], shown["battles"])
        assert (rating, lower, upper) == pytest.approx((shown["rating"], shown["lower"], shown["upper"]), abs=0.05)
    st.cache_resource.clear()
