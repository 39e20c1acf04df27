"""The app as a public Space runs it, attacked from outside: `python app.py` with an admin token, admin actions
closed without it (WORKBENCH_ADMIN_OPEN=0 stands in for listening publicly, so the test stays on loopback),
and one trusted proxy, so each test can be a different visitor by the X-Forwarded-For entry our "proxy" adds.

Every admin action is tried through gradio_client and straight through the queue by fn_index; limits,
throttles and ballots are checked per visitor address; uploads, Host names and oversized bodies as raw HTTP. The
owner's own app (the session's `gradio_app`, on loopback with admin open to this machine) is reached through a
"proxy" and under a rebinding host name, which must not count as this machine.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from gradio_client import Client

from tests.fixtures.arena import shown_prompt, text_of
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
    env = public_app_env(wb_env, port, f"sqlite:///{db}", admin_token=TOKEN, upload_mb="1", **limits)
    uploads = tmp_path_factory.mktemp("gradio-uploads")
    env["GRADIO_TEMP_DIR"] = str(uploads)  # where Gradio writes what it accepts: refused uploads must leave nothing
    url = f"http://127.0.0.1:{port}/"
    with server_process([sys.executable, str(ROOT / "app.py")], url, env, "public_app.log"):
        yield type("App", (), {"url": url, "db": f"sqlite:///{db}", "uploads": uploads})


def files_in(folder) -> list:
    return [p for p in folder.rglob("*") if p.is_file()]


def turn(role: str, text: str) -> dict:
    """A chat message as Gradio 6's Chatbot sends it."""
    return {"role": role, "content": [{"type": "text", "text": text}]}


def chat_data(
    message: str, *, max_new_tokens: int = 1, stop: str = "", history=None, system: str = "", strength: float = 1.0
) -> list:
    # the newer inputs last: min-p, adapter strength
    return [message, history or [], system, "base", 0.0, max_new_tokens, 0.95, 50, 1.0, 0, stop, 0.0, strength]


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


def test_every_check_of_the_token_is_throttled_and_answers_alike(public_app):
    url = public_app.url
    check, refresh, cancel = fn_index(url, "check"), fn_index(url, "refresh_all"), fn_index(url, "cancel_training")
    guesser = visitor("10.0.5.1")
    answers = set()
    for i in range(5):  # five distinct guesses, spread over the dataset check, the run list timer and Cancel
        if i % 3 == 0:
            inputs = default_inputs(url, check, ft_token=f"guess-{i}")
            answers.add(call(url, check, inputs, guesser).output[0].split("** ")[-1])
        elif i % 3 == 1:
            answers.add(call(url, refresh, [None, None, f"guess-{i}"], guesser).output[2])
        else:
            answers.add(call(url, cancel, ["no-such-run", f"guess-{i}"], guesser).error)
    assert answers == {"This action needs the admin token (WORKBENCH_ADMIN_TOKEN is set on this server)."}
    # The timer re-sending the right token now is refused too: the address spent its guesses.
    assert "Too many wrong admin tokens" in call(url, refresh, [None, None, TOKEN], guesser).output[2]
    assert "Too many" not in call(url, refresh, [None, None, TOKEN], visitor("10.0.5.2")).output[2]


def test_uploads_need_the_admin_and_a_refused_one_leaves_nothing(public_app):
    url, folder = public_app.url, public_app.uploads
    before = files_in(folder)
    dataset = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
    refused = httpx.post(f"{url}gradio_api/upload", files={"files": ("d.jsonl", dataset)}, headers=visitor("10.0.6.1"))
    assert refused.status_code == 403 and "admin token" in refused.json()["detail"]
    many = [("files", (f"d{i}.jsonl", dataset)) for i in range(5)]
    refresh = fn_index(url, "refresh_all")
    call(url, refresh, [None, None, TOKEN], visitor("10.0.6.2"))  # the admin enters the token on the tab
    assert httpx.post(f"{url}gradio_api/upload", files=many, headers=visitor("10.0.6.2")).status_code == 413
    big = b"x" * 700_000
    assert httpx.post(
        f"{url}gradio_api/upload", files={"files": ("a.jsonl", big)}, headers=visitor("10.0.6.2")
    ).is_success
    over = httpx.post(f"{url}gradio_api/upload", files={"files": ("b.jsonl", big)}, headers=visitor("10.0.6.2"))
    assert over.status_code == 429 and "1 MB per hour" in over.json()["detail"]
    for _ in range(50):  # Gradio moves an accepted file into its cache after answering
        if len(files_in(folder)) > len(before):
            break
        time.sleep(0.1)
    assert len(files_in(folder)) == len(before) + 1  # the one accepted upload, nothing of the refused ones


def test_oversized_requests_and_the_token_views_reply_are_measured(public_app):
    url = public_app.url
    show, chat = fn_index(url, "show"), fn_index(url, "chat")
    hundred_mb = {"data": ["x" * 100_000_000], "fn_index": chat, "session_hash": "abcdefghijk0"}
    with httpx.Client(timeout=60) as http:
        joined = http.post(
            f"{url}gradio_api/queue/join",
            content=json.dumps(hundred_mb).encode(),
            headers={"content-type": "application/json", **visitor("10.0.7.1")},
        )
    assert joined.status_code == 413 and "the limit here" in joined.json()["detail"]
    history = [turn("user", "Hi"), turn("assistant", "word " * 4_000)]
    long_reply = call(url, show, [history, "", "base", 0.7, 0.9, 50, 1.0, "probability"], visitor("10.0.7.2"))
    # The page's event answers in its notice, not with a failure badge; nothing was tokenized.
    assert long_reply.success and "The reply to read is over 16,000 characters" in long_reply.output[0]
    # What a checkpoint changed: the same measures, and the pair's own sentences, before any model is asked.
    shift = fn_index(url, "show_shift")
    long_shift = call(url, shift, [history, "", "some-run", "base"], visitor("10.0.7.4"))
    assert long_shift.success and "The reply to read is over 16,000 characters" in long_shift.output[0]
    same = call(url, shift, [history[:1], "", "base", "base"], visitor("10.0.7.4"))
    assert same.success and "Choose two different checkpoints to compare; both are base." in same.output[0]
    many = [turn("user", "z"), turn("assistant", "y")] * 101
    # Past what any visitor's conversation may hold: refused at the queue's door, before the event is queued.
    refused = call(url, show, [many, "", "base", 0.7, 0.9, 50, 1.0, "probability"], visitor("10.0.7.3"))
    assert not refused.success and "has 202 messages; the limit here is 200" in refused.error


def test_a_visitor_gets_their_share_of_the_queue(public_app):
    url = public_app.url
    chat = fn_index(url, "chat")
    results: list = [None] * 3

    def send(i: int) -> None:
        results[i] = call(url, chat, chat_data(f"Tell me a story ({i}).", max_new_tokens=16), visitor("10.0.8.1"))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refused = [r for r in results if not r.success]
    assert len(refused) == 1 and "the most one visitor may have here" in refused[0].error, results
    assert call(url, chat, chat_data("Hi"), visitor("10.0.8.2")).success  # another visitor is served


def test_the_owners_app_is_not_the_owners_through_a_proxy_or_a_rebinding_name(gradio_app):
    url = gradio_app.url
    cancel = fn_index(url, "cancel_training")
    here = call(url, cancel, ["no-such-run", ""])
    assert here.success and "not running" in str(here.output)  # this machine: admin without a token
    proxied = call(url, cancel, ["no-such-run", ""], {"X-Forwarded-For": "203.0.113.9"})
    assert "Admin actions are closed on this server for callers from elsewhere" in proxied.error
    # A sandboxed iframe or a file:// page sends "Origin: null": a page of unknown origin, never this machine's own.
    for origin in ("null", "https://attacker.example"):
        framed = call(url, cancel, ["no-such-run", ""], {"Origin": origin})
        assert "Admin actions are closed on this server for callers from elsewhere" in framed.error, origin
    rebound = httpx.post(f"{url}gradio_api/queue/join", json={}, headers={"Host": "rebind.attacker.example:7860"})
    assert rebound.status_code == 421
    upload = httpx.post(f"{url}gradio_api/upload", files={"files": ("x.jsonl", b"{}")}, headers={"Via": "1.1 nginx"})
    assert upload.status_code == 403


def test_wrong_tokens_are_throttled_per_visitor(public_app):
    url = public_app.url
    cancel = fn_index(url, "cancel_training")
    for i in range(5):
        assert "needs the admin token" in call(url, cancel, ["no-such-run", f"guess-{i}"], visitor("10.0.1.1")).error
    blocked = call(url, cancel, ["no-such-run", TOKEN], visitor("10.0.1.1"))
    assert "Too many wrong admin tokens" in blocked.error  # even the right token waits now
    other = call(url, cancel, ["no-such-run", TOKEN], visitor("10.0.1.2"))
    assert "Too many" not in other.error and "admin token" not in other.error


def test_chat_requests_are_limited_on_the_server(public_app):
    url = public_app.url
    chat = fn_index(url, "chat")
    cases = {
        f"between 1 and {MAX_NEW}, not {MAX_NEW + 1}": chat_data("Hi", max_new_tokens=MAX_NEW + 1),  # the slider's
        "characters": chat_data("x" * 8_001),
        "stop strings": chat_data("Hi", stop="\n".join(f"s{i}" for i in range(9))),
        "messages": chat_data("Hi", history=[{"role": "user", "content": [{"type": "text", "text": "z"}]}] * 201),
        "System prompt is 4,001 characters": chat_data("Hi", system="y" * 4_001),
        "between 0 and 1.5, not 2": chat_data("Hi", strength=2),  # the adapter strength slider's bounds
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
    page.get_by_label("Two checkpoints").check()  # the seeded pairs (the tab may start on settings pairs)
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


def test_the_arena_serves_what_the_sampler_chooses_and_says_when_the_ranking_is_settled(public_app):
    """Settings pairs of one checkpoint, voted until the stopping rule is met: the Arena says so and serves none;
    a new setting's outputs then come first (placement). Pairs go through the app's own sampler."""
    temps = {0.2: "slow", 0.7: "steady", 1.2: "wild"}  # strongest first below: 0.7 > 0.2 > 1.2
    prompts = [f"Sampler prompt {i}: name a bird." for i in range(12)]
    with Store(public_app.db) as store:
        ids = {
            (t, p): store.add_generation("sampler-ckpt", p, f"{word} bird {i}", {"temperature": t, "seed": 0})
            for i, p in enumerate(prompts)
            for t, word in temps.items()
        }
        for rater in ("r1", "r2", "r3", "r4"):
            for i, p in enumerate(prompts):
                upset = i == int(rater[1])  # each rater once against the grain: 44 of 48 votes go the strong way
                for strong, weak in ((0.7, 0.2), (0.2, 1.2), (0.7, 1.2)):
                    store.add_vote(ids[strong, p], ids[weak, p], "b" if upset else "a", rater=rater)
    client = Client(public_app.url, verbose=False, headers=visitor("10.0.9.1"))
    try:
        left, right, status, _ = client.predict("", "settings", api_name="/arena_next")
        assert (shown_prompt(left), shown_prompt(right)) == ("", "") and "settled after 144 votes" in status
        with Store(public_app.db) as store:  # a setting never voted on: not settled any more
            store.add_generation("sampler-ckpt", prompts[0], "fresh bird", {"temperature": 1.0, "seed": 0})
        left, right, status, _ = client.predict("", "settings", api_name="/arena_next")
        answers = (text_of(left[-1]), text_of(right[-1]))
        assert shown_prompt(left) == prompts[0] and "fresh bird" in answers and status.startswith("Which answer")
    finally:
        client.close()


def test_a_flood_of_guesses_from_many_addresses_never_locks_the_owner_out(public_app):
    """Last in the module: it fills the global window of wrong tokens for five minutes."""
    url = public_app.url
    cancel = fn_index(url, "cancel_training")
    for n in range(50):
        call(url, cancel, ["no-such-run", f"flood-{n}"], visitor(f"10.0.9.{n}"))
    assert "Too many" in call(url, cancel, ["no-such-run", "again"], visitor("10.0.9.3")).error  # one try each now
    owner = call(url, cancel, ["no-such-run", TOKEN], visitor("10.0.10.1"))
    assert "admin token" not in owner.error and "Too many" not in owner.error


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


# What an attacker sends where the page would send a value: each is sent, raw, in place of every input of every
# event in turn (the other inputs at their starting values).
HOSTILE = {
    "a string of 300 kB": "x" * 300_000,  # past every text cap (a visitor's conversation holds 100,000 characters)
    "a nested list": _nested(400),
    "a list of 20,000 items": [0] * 20_000,
    "NaN": float("nan"),
    "Infinity": float("-inf"),
    "a huge number": 1e308,
    "a negative number": -1e12,
    "a file given as a link": {"path": "https://example.com/data.jsonl", "meta": {"_type": "gradio.FileData"}},
    "a file given as a server path": {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}},
    "true": True,
    "odd Unicode": "\u202e\u0000\ufeff\u0301" + "\U0001f600" * 8 + "\ud800",
}


def _store_rows(db_url: str) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}


def _answer(url: str, index: int, data: list, address: str) -> tuple[int, str]:
    """(HTTP status of the join, what the caller was told): the refusal's detail, or the event's error or output."""
    session = f"h{abs(hash((index, address))) % 10**10:010d}"
    body = json.dumps({"data": data, "fn_index": index, "session_hash": session}, allow_nan=True)
    headers = {"content-type": "application/json", **visitor(address)}
    with httpx.Client(base_url=url, headers=headers, timeout=90) as http:
        joined = http.post("gradio_api/queue/join", content=body)
        if joined.status_code != 200:
            detail = joined.json()["detail"]
            return joined.status_code, detail if isinstance(detail, str) else " ".join(d["message"] for d in detail)
        with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as events:
            for line in events.iter_lines():
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("msg") == "process_completed":
                    out = message.get("output") or {}
                    return 200, out.get("error") or json.dumps(out.get("data"))[:300]
    return 200, "the stream ended without an answer"


def test_hostile_values_in_every_input_of_every_event_are_refused_with_a_sentence(public_app):
    """Covers new events by construction: the events are read from /config. Nothing runs unchecked: a value its
    declaration refuses is answered at the queue's door (4xx and a sentence), before Gradio or the function sees it;
    a value it accepts reaches a function that answers with a sentence of its own. Nothing is stored or written."""
    url = public_app.url
    config = httpx.get(f"{url}config", timeout=30).json()
    values = {c["id"]: (c.get("props") or {}).get("value") for c in config["components"]}
    assert all(d["queue"] is not False for d in config["dependencies"] if d.get("backend_fn")), "all queued"
    outside = httpx.post(f"{url}gradio_api/run/predict", json={"data": [], "fn_index": 0, "session_hash": "x"})
    assert outside.status_code >= 400  # nothing runs outside the queue
    before = (_store_rows(public_app.db), files_in(public_app.uploads))
    events = {tuple(d["inputs"]): d for d in config["dependencies"] if d.get("backend_fn")}.values()

    def attack(case: tuple) -> tuple:
        n, dep, position, name = case
        data = [values.get(i) for i in dep["inputs"]]
        data[position] = HOSTILE[name]
        status, said = _answer(url, dep["id"], data, f"10.{50 + n // 65536}.{n // 256 % 256}.{n % 256}")
        return dep["inputs"][position], name, status, said[:200], dep.get("api_name")

    # First every input component with every hostile value, in the first event that takes it: a value its
    # declaration refuses is refused at the queue's door whatever the event. Then each other event that takes the
    # component gets the values that passed the door, since those reach its own function.
    carriers = {}
    for dep in events:
        for position, component in enumerate(dep["inputs"]):
            carriers.setdefault(component, (dep, position))
    first = [(dep, position, name) for dep, position in carriers.values() for name in HOSTILE]
    with ThreadPoolExecutor(4) as pool:  # four visitors at a time, each from an address of their own
        answers = list(pool.map(attack, [(n, *case) for n, case in enumerate(first)]))
        passed = {(a[0], a[1]) for a in answers if a[2] == 200}
        again = [
            (dep, position, name)
            for dep in events
            for position, component in enumerate(dep["inputs"])
            if carriers[component][0] is not dep
            for name in HOSTILE
            if (component, name) in passed
        ]
        answers += list(pool.map(attack, [(len(first) + n, *case) for n, case in enumerate(again)]))
    assert len(carriers) > 40 and len(answers) > len(carriers) * len(HOSTILE)  # every input of every event
    for where in answers:
        assert where[2] in (200, 400, 422), where
        assert where[3] and "Traceback" not in where[3], where
    assert (_store_rows(public_app.db), files_in(public_app.uploads)) == before
    assert httpx.get(f"{url}status", timeout=10).json()["ready"]
