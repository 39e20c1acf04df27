"""The app as a public Space runs it, attacked from outside: `python app.py` with an admin token, admin actions
closed without it (WORKBENCH_ADMIN_OPEN=0 stands in for listening publicly, so the test stays on loopback),
and one trusted proxy, so each test can be a different visitor by the X-Forwarded-For entry our "proxy" adds.

Every admin action is tried through gradio_client and straight through the queue by fn_index; limits,
throttles and ballots are checked per visitor address.
"""

from __future__ import annotations

import sys

import pytest
from gradio_client import Client

from tests.fixtures.arena import shown_prompt
from tests.fixtures.queue import call, default_inputs, fn_index
from tests.fixtures.servers import ROOT, free_port, public_app_env, server_process
from workbench.store import Store

pytestmark = pytest.mark.slow

TOKEN = "t0ken-for-tests"
RATE, VOTES, MAX_NEW = 4, 5, 64
PROMPTS = [f"Name a colour, please ({i})." for i in range(8)]
XSS = "<img src=x onerror=alert(1)><script>alert(2)</script> **bold?**"


def visitor(address: str) -> dict[str, str]:
    """The header our one trusted proxy adds for a visitor at `address`."""
    return {"X-Forwarded-For": address}


@pytest.fixture(scope="module")
def public_app(wb_env, tmp_path_factory):
    db = tmp_path_factory.mktemp("public") / "store.db"
    with Store(f"sqlite:///{db}") as store:
        for prompt in PROMPTS:
            for checkpoint in ("base", "rival"):
                store.add_generation(checkpoint, prompt, f"{checkpoint} says blue {XSS}", None)
    port = free_port()
    limits = {"rate_limit": str(RATE), "vote_limit": str(VOTES), "visitor_max_new_tokens": str(MAX_NEW)}
    env = public_app_env(wb_env, port, f"sqlite:///{db}", admin_token=TOKEN, **limits)
    url = f"http://127.0.0.1:{port}/"
    with server_process([sys.executable, str(ROOT / "app.py")], url, env, "public_app.log"):
        yield type("App", (), {"url": url, "db": f"sqlite:///{db}"})


def chat_data(message: str, *, max_new_tokens: int = 1, stop: str = "", history=None, system: str = "") -> list:
    return [message, history or [], system, "base", 0.0, max_new_tokens, 0.95, 50, 1.0, 0, stop]


def test_admin_actions_need_the_token_through_the_client_and_the_queue(public_app):
    url = public_app.url
    client = Client(url, verbose=False, headers=visitor("10.0.0.1"))
    with pytest.raises(Exception, match="admin token"):
        client.predict("no-such-run", "wrong", api_name="/cancel_training")
    for name in ("cancel_training", "resume_training"):
        refused = call(url, fn_index(url, name), ["no-such-run", ""], visitor("10.0.0.2"))
        assert not refused.success and "admin token" in refused.error
    # The dataset check reads and tokenizes uploads, and the run list shows losses: both are the operator's.
    index = fn_index(url, "check")
    check = call(url, index, default_inputs(url, index), visitor("10.0.0.3"))
    assert check.success and "admin token" in check.output[0]
    # With the right token the same call gets past the check and answers about the run itself.
    allowed = call(url, fn_index(url, "cancel_training"), ["no-such-run", TOKEN], visitor("10.0.0.4"))
    assert "admin token" not in allowed.error and "no-such-run" in (allowed.error + str(allowed.output))
    client.close()


def test_wrong_tokens_are_throttled_per_visitor(public_app):
    url = public_app.url
    cancel = fn_index(url, "cancel_training")
    for _ in range(5):
        assert "needs the admin token" in call(url, cancel, ["no-such-run", "guess"], visitor("10.0.1.1")).error
    blocked = call(url, cancel, ["no-such-run", TOKEN], visitor("10.0.1.1"))
    assert "Too many wrong admin tokens" in blocked.error  # even the right token waits now
    other = call(url, cancel, ["no-such-run", TOKEN], visitor("10.0.1.2"))
    assert "Too many" not in other.error and "admin token" not in other.error


def test_chat_requests_are_limited_on_the_server(public_app):
    url = public_app.url
    chat = fn_index(url, "chat")
    cases = {
        f"maximum value {MAX_NEW}": chat_data("Hi", max_new_tokens=MAX_NEW + 1),  # the slider's own bound
        "characters": chat_data("x" * 8_001),
        "stop strings": chat_data("Hi", stop="\n".join(f"s{i}" for i in range(9))),
        "messages": chat_data("Hi", history=[{"role": "user", "content": [{"type": "text", "text": "z"}]}] * 201),
        "system prompt": chat_data("Hi", system="y" * 4_001),
    }
    for n, (expected, data) in enumerate(cases.items()):
        outcome = call(url, chat, data, visitor(f"10.0.2.{n}"))
        assert not outcome.success and expected in outcome.error, (expected, outcome)
    for _ in range(RATE):
        assert call(url, chat, chat_data("Hi"), visitor("10.0.2.100")).success
    limited = call(url, chat, chat_data("Hi"), visitor("10.0.2.100"))
    assert not limited.success and f"limit of {RATE} replies per minute" in limited.error
    assert call(url, chat, chat_data("Hi"), visitor("10.0.2.101")).success  # another visitor is not affected


def test_one_ballot_per_visitor_and_pair_and_a_vote_limit(public_app):
    url = public_app.url
    first = Client(url, verbose=False, headers=visitor("10.0.3.1"))
    prompt = shown_prompt(first.predict("", api_name="/arena_next")[0])
    assert prompt in PROMPTS
    receipt = first.predict("", "", api_name="/vote_left")
    changed = first.predict("", "", api_name="/vote_right")  # the same pair again, another choice
    assert "first vote is the one that counts" in changed and "Recorded: A is better" in receipt
    assert changed.startswith(receipt.split(" Press")[0])  # the receipt shows the vote that was kept
    # A new session from the same address is the same voter: that pair is not offered again.
    again = Client(url, verbose=False, headers=visitor("10.0.3.1"))
    assert shown_prompt(again.predict("alice", api_name="/arena_next")[0]) != prompt  # a typed name changes nothing
    with Store(public_app.db) as store:
        votes = store.votes()
    assert len(votes) == 1 and votes["rater"].iloc[0].startswith("anon-")  # public: no typed names
    for client in (first, again):
        client.close()

    flood = Client(url, verbose=False, headers=visitor("10.0.3.9"))
    for _ in range(VOTES):
        flood.predict("", api_name="/arena_next")
        assert "Press **Show a pair**" in flood.predict("", "", api_name="/vote_tie")
    flood.predict("", api_name="/arena_next")
    assert f"limit of {VOTES} votes per hour" in flood.predict("", "", api_name="/vote_tie")  # said in the status
    flood.close()


def test_injected_html_never_runs_in_the_chat_or_the_arena(public_app, page, artifacts):
    from playwright.sync_api import expect

    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.set_extra_http_headers(visitor("10.0.4.1"))
    page.goto(public_app.url, wait_until="domcontentloaded")
    page.locator("#msg textarea").fill(f"Repeat this: {XSS}")
    page.locator("#msg textarea").press("Enter")
    expect(page.locator("#stats")).to_contain_text("tokens", timeout=120_000)
    page.get_by_role("tab", name="Arena").click()
    page.locator("#arena-next").click()
    expect(page.locator("#arena-status")).to_contain_text("Which answer is better?")
    page.locator("#arena-vote-left").click()
    expect(page.locator("#arena-status")).to_contain_text("Recorded")
    page.screenshot(path=artifacts / "public_arena.png", full_page=True)
    assert not dialogs, dialogs
    # The chat renders Markdown through Gradio's sanitizer: tags may stay, handlers and scripts may not.
    assert page.locator("[onerror]").count() == 0
    assert page.evaluate("[...document.scripts].every(s => !s.text.includes('alert(2)'))")
    expect(page.locator("#arena-left")).to_contain_text("says blue")  # the output is shown, its HTML defused
