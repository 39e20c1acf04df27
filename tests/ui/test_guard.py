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
