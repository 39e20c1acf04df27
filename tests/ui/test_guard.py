"""The HTTP guard in front of the Gradio app, in process as raw ASGI messages (the way an attacker's bytes arrive),
and the token view's input checks under hypothesis.

The app behind the guard is a stand-in that records what reached it: the guard's job is exactly which requests
get through, and with which body. Over HTTP against `python app.py`, the same rules are in
tests/e2e/test_public_space.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench import access
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.gate.sizes import check_chat, check_reply, visitor_sizes
from workbench.generation.settings import GenerationSettings
from workbench.ui import guard
from workbench.ui.chat_tuning import last_exchange

ADMIN, VISITOR = "198.51.100.10", "198.51.100.20"
VIEW = GenerationSettings(max_new_tokens=1)  # what the token view checks its request with
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Recorder:
    """The app behind the guard: remembers each request's path and body, answers 200."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []

    async def __call__(self, scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.seen.append((scope["path"], body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def request(app, path: str, body: bytes, headers: dict[str, str], *, chunks: int = 1, peer: str = "10.0.0.1"):
    """Send one HTTP POST through `app`; returns (status, answer text)."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": (peer, 50000),
    }
    step = max(1, -(-len(body) // chunks))
    parts = [body[i : i + step] for i in range(0, len(body), step)] or [b""]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    # In a thread of its own: a session's sync Playwright marks an event loop running in the main thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    text = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode()
    return status, text


def multipart(files: int, size: int) -> tuple[bytes, str]:
    boundary = "wbtestboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="f{i}.jsonl"\r\n\r\n'.encode()
        + b"x" * size
        + b"\r\n"
        for i in range(files)
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def guarded(tmp_path):
    access.THROTTLE.reset()
    settings = Settings(home=tmp_path, host="0.0.0.0", admin_token="s3cret", trusted_proxies=1, upload_mb=1)
    settings.check_admin("s3cret", access.Caller(ADMIN, False))  # the admin gave the token from this address
    inner = Recorder()
    yield guard.Guard(inner, settings), inner, settings
    access.THROTTLE.reset()


def headers(address: str, **extra: str) -> dict[str, str]:
    return {"host": "wb.example", "x-forwarded-for": address, **extra}


def test_hosts_bodies_and_uploads_are_refused_before_the_app_sees_them(tmp_path):
    access.THROTTLE.reset()
    inner = Recorder()
    laptop = guard.Guard(inner, Settings(home=tmp_path))
    status, text = request(laptop, "/gradio_api/queue/join", b"{}", {"host": "rebind.attacker.example:7860"})
    assert status == 421 and "does not answer to the host name" in json.loads(text)["detail"]
    status, _ = request(laptop, "/gradio_api/queue/join", b"{}", {"host": "127.0.0.1:7860"})
    assert status == 200
    # A visitor's body is capped whether it says its size or streams it in chunks; the owner's cap is larger.
    big = b"x" * (guard.VISITOR_BODY + 1)
    via_proxy = {"host": "127.0.0.1", "x-forwarded-for": "203.0.113.1"}
    assert request(laptop, "/gradio_api/queue/join", big, {**via_proxy, "content-length": str(len(big))})[0] == 413
    assert request(laptop, "/gradio_api/queue/join", big, via_proxy, chunks=9)[0] == 413
    assert request(laptop, "/gradio_api/queue/join", big, {"host": "127.0.0.1"}, peer="127.0.0.1")[0] == 200
    closed = guard.Guard(inner, Settings(home=tmp_path, host="0.0.0.0"), uploads=False)
    status, text = request(closed, "/gradio_api/upload", b"x", {"host": "a", "content-length": "1"}, peer="127.0.0.1")
    assert status == 403 and "closed" in text
    assert [path for path, _ in inner.seen] == ["/gradio_api/queue/join", "/gradio_api/queue/join"]


def test_uploads_are_for_the_admin_within_a_budget(guarded):
    app, inner, _ = guarded
    body, kind = multipart(1, 1000)
    sized = {"content-type": kind, "content-length": str(len(body))}
    status, text = request(app, "/gradio_api/upload", body, headers(VISITOR, **sized))
    assert status == 403 and "admin token" in text
    assert request(app, "/gradio_api/upload", body, headers(ADMIN, **sized))[0] == 200
    assert inner.seen == [("/gradio_api/upload", body)]  # exactly the bytes sent, once
    many, many_kind = multipart(guard.UPLOAD_FILES + 1, 10)
    status, text = request(
        app, "/gradio_api/upload", many, headers(ADMIN, **{"content-type": many_kind, "content-length": str(len(many))})
    )
    assert status == 413 and "at most" in text
    assert request(app, "/gradio_api/upload", body, headers(ADMIN, **{"content-type": kind}))[0] == 411  # no size
    large, large_kind = multipart(1, 700_000)
    sized = {"content-type": large_kind, "content-length": str(len(large))}
    assert request(app, "/gradio_api/upload", large, headers(ADMIN, **sized))[0] == 200
    status, text = request(app, "/gradio_api/upload", large, headers(ADMIN, **sized))  # over 1 MB this hour
    assert status == 429 and "1 MB per hour" in text
    assert len(inner.seen) == 2


@FAST
@given(
    size=st.integers(min_value=0, max_value=300_000),
    declared=st.one_of(st.none(), st.integers(min_value=-5, max_value=2_000_000), st.just("junk")),
    files=st.integers(min_value=0, max_value=8),
    chunks=st.integers(min_value=1, max_value=5),
    admin=st.booleans(),
)
def test_no_upload_reaches_the_app_unless_every_rule_holds(guarded, size, declared, files, chunks, admin):
    app, inner, settings = guarded
    before = len(inner.seen)
    body, kind = multipart(files, size // max(files, 1)) if files else (b"y" * size, "application/octet-stream")
    extra = {"content-type": kind}
    if declared is not None:
        extra["content-length"] = str(len(body) if declared == 0 else declared)
    budget_left = settings.upload_mb * 1024 * 1024 - guarded[0]._per_address.used(ADMIN)
    status, _ = request(app, "/gradio_api/upload", body, headers(ADMIN if admin else VISITOR, **extra), chunks=chunks)
    reached = len(inner.seen) > before
    length = extra.get("content-length", "")
    allowed = (
        admin
        and length.isdigit()
        and int(length) == len(body)
        and len(body) <= budget_left
        and files <= guard.UPLOAD_FILES
    )
    assert reached is bool(allowed) and (status == 200) is bool(allowed)
    if reached:
        assert inner.seen[-1][1] == body


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["role", "content", "x"]), inner),
    max_leaves=25,
)
turns = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool"]), "content": json_values | st.text(max_size=60)}
)


@FAST
@given(
    history=st.one_of(st.lists(turns, max_size=6), json_values),
    reply=st.one_of(st.text(max_size=50), st.just("r" * 16_001), st.just(["long"] * 5_000)),
    system=st.one_of(st.none(), st.text(max_size=20), st.integers()),
)
def test_the_token_view_measures_everything_it_is_handed(history, reply, system):
    """The token view's checks, in its order: the whole conversation as sent (the reply included), then the
    exchange, then the reply's own length; whatever arrives gives messages within the visitor's sizes or one
    sentence, before any tokenizer is involved."""
    sizes = visitor_sizes(Settings())
    sent = [*history, {"role": "assistant", "content": reply}] if isinstance(history, list) else history
    try:
        check_chat(sizes, "", system, sent, VIEW)
        messages, text = last_exchange(sent, system if isinstance(system, str) else "")
        check_reply(sizes, text)
    except WorkbenchError as exc:
        assert str(exc).strip() and "\n" not in str(exc)
        return
    assert len(text) <= sizes.reply_chars and sum(len(m["content"]) for m in messages) <= sizes.history_chars


@pytest.fixture
def held_app(tmp_path):
    """A real Gradio server on loopback behind the queue's gate, with one cheap event that waits until released
    (so its calls stay in the queue), one that declares a bounded slider, and one proxy in front."""
    import socket
    import threading

    import gradio as gr

    release = threading.Event()
    settings = Settings(home=tmp_path, trusted_proxies=1, admin_open="0", queue_size=64, visitor_events=12)
    with gr.Blocks() as demo:
        name = gr.Textbox(max_length=20)
        amount = gr.Slider(0, 10, label="Amount")
        out = gr.Textbox(max_length=20)
        gr.Button().click(lambda n: release.wait(30) and n, name, out, api_name="held", concurrency_limit=1)
        gr.Button().click(lambda a: str(a), amount, out, api_name="amount")
    demo.queue(max_size=settings.queue_size)
    guard.gate_queue(demo, settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", release
    finally:
        release.set()
        demo.close()


def test_no_address_fills_the_queue_and_values_are_checked_at_the_door(held_app):
    import httpx

    url, release = held_app

    def join(fn_index: int, data: list, address: str, session: str) -> httpx.Response:
        body = {"data": data, "fn_index": fn_index, "session_hash": session}
        return httpx.post(f"{url}gradio_api/queue/join", json=body, headers={"X-Forwarded-For": address}, timeout=30)

    # 70 session hashes from one address (the queue's max_size is 64): its share is 12, and the 13th is refused.
    answers = [join(0, ["hi"], "203.0.113.5", f"flood{i:04d}").status_code for i in range(70)]
    assert answers.count(200) == 12 and answers.count(503) == 58
    refusal = join(0, ["hi"], "203.0.113.5", "one-more")
    assert "12 actions waiting or running, the most one visitor may have here" in refusal.json()["detail"]
    assert join(0, ["hi"], "203.0.113.6", "someone-else").status_code == 200  # another visitor still gets in
    # Values are checked against each input's declaration before the event is queued (Gradio's 422 shape).
    too_long = join(0, ["x" * 21], "203.0.113.7", "long")
    assert too_long.status_code == 422 and "is 21 characters; the limit here is 20" in too_long.text
    for value in ("5", 11, True, None, [1]):
        refused = join(1, [value], "203.0.113.8", f"amount-{value!r}")
        assert refused.status_code == 422 and "Amount" in refused.text, value
    assert join(1, [3], "203.0.113.8", "amount-ok").status_code == 200
    assert join(7, [3], "203.0.113.8", "no-such").status_code == 400  # no event by that index
    release.set()
