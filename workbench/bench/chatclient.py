"""A light load client for the app's chat: plain HTTP and server-sent events, many chats on one asyncio loop.

    timings = run_chats("http://127.0.0.1:7860/", ["Hi", "Hello"], max_new_tokens=64, temperature=0.7)

Each chat goes the way a visitor's browser sends it: `POST /gradio_api/queue/join` with the "chat" endpoint's
fn_index and a session of its own, then the events of `GET /gradio_api/queue/data` until the reply completes.
The inputs are the page's own starting values (from `/config`), with the message, an empty history and the
sampling values set, so the app runs the same code path a visitor's message does. Before the timed message,
each session is opened (untimed) with one request that does nothing (the "stop" endpoint), as a visitor's page
has its session from the moment it opened: Gradio builds a session's state on its first request (about 20 ms
of the app's CPU on 2 busy cores), which a page's own load events pay, not its first message.

One thread and one event loop carry every chat (httpx's async client), so the client takes little of the
machine it measures; gradio_client would start threads per session (see `workbench.bench.load`).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

_TOKENS = re.compile(r"(\d+) tokens?\b")


@dataclass
class ChatTiming:
    """One chat as the client saw it (seconds from the moment it was sent).

    Attributes:
        first_s: When the first text of the reply arrived (None if none did).
        done_s: When the reply was complete.
        tokens: New tokens of the reply, from the app's stats line.
        error: The app's error message, or "" when it answered.
    """

    first_s: float | None
    done_s: float
    tokens: int
    error: str = ""


@dataclass
class Endpoint:
    """What a chat request needs: the chat event's fn_index and its inputs at the page's starting values."""

    fn_index: int
    inputs: list[Any]
    positions: dict[str, int]  # elem_id -> index in inputs, for the values a chat sets
    opener: int | None = None  # fn_index of an event that opens a session and does nothing ("stop")

    def data(self, message: str, **values: Any) -> list[Any]:
        """The inputs for one chat: `message`, an empty history, and `values` by elem_id (temperature, ...)."""
        data = list(self.inputs)
        data[0], data[1] = message, []
        for elem_id, value in values.items():
            data[self.positions[elem_id]] = value
        return data


def chat_endpoint(url: str, api_name: str = "chat") -> Endpoint:
    """Read the app's /config for the event published as `api_name`."""
    config = httpx.get(f"{url}config", timeout=30).json()
    components = {c["id"]: c.get("props") or {} for c in config["components"]}
    event = next(d for d in config["dependencies"] if d.get("api_name") == api_name)
    inputs = [components.get(i, {}).get("value") for i in event["inputs"]]
    positions = {components[i].get("elem_id"): n for n, i in enumerate(event["inputs"]) if components.get(i)}
    opener = next((d["id"] for d in config["dependencies"] if d.get("api_name") == "stop"), None)
    return Endpoint(event["id"], inputs, {k: v for k, v in positions.items() if k}, opener)


def _has_text(history: Any) -> bool:
    """Whether the last message is the assistant's and holds text (a starting app first echoes the user's
    message alone, which is not a first token)."""
    if not isinstance(history, list) or not history or not isinstance(history[-1], dict):
        return False
    if history[-1].get("role") != "assistant":
        return False
    content = history[-1].get("content")
    if isinstance(content, list):  # a message's content as parts: [{"type": "text", "text": ...}]
        return any(isinstance(p, dict) and p.get("text") for p in content)
    return bool(content)


async def _open(http: httpx.AsyncClient, endpoint: Endpoint) -> str:
    """A new session, opened as a page's first request opens it."""
    session = uuid.uuid4().hex[:12]
    if endpoint.opener is not None:  # through the queue, like every event of the app (its REST routes are closed)
        body = {"data": [], "fn_index": endpoint.opener, "session_hash": session}
        (await http.post("gradio_api/queue/join", json=body)).raise_for_status()
        async with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as events:
            async for line in events.aiter_lines():
                if line.startswith("data:") and '"process_completed"' in line:
                    break
    return session


async def _chat(http: httpx.AsyncClient, endpoint: Endpoint, data: list[Any], session: str) -> ChatTiming:
    from gradio_client.utils import apply_diff

    body = {"data": data, "fn_index": endpoint.fn_index, "session_hash": session, "event_data": None}
    started = time.perf_counter()
    first: float | None = None
    history: Any = None
    joined = await http.post("gradio_api/queue/join", json=body)
    if joined.status_code != 200:
        return ChatTiming(None, time.perf_counter() - started, 0, joined.text[:200])
    async with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as events:
        async for line in events.aiter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            kind = message.get("msg")
            if kind == "process_generating" and first is None:
                # The first update carries whole values; later ones are diffs against the previous update.
                output = (message.get("output") or {}).get("data") or [None]
                history = output[0] if history is None else apply_diff(history, output[0])
                if _has_text(history):
                    first = time.perf_counter() - started
            elif kind == "process_completed":
                done = time.perf_counter() - started
                output = message.get("output") or {}
                if not message.get("success"):
                    return ChatTiming(first, done, 0, str(output.get("error") or "failed"))
                values = output.get("data") or []
                found = _TOKENS.search(str(values[1] if len(values) > 1 else ""))
                return ChatTiming(first if first is not None else done, done, int(found.group(1)) if found else 0)
            elif kind == "queue_full":
                return ChatTiming(None, time.perf_counter() - started, 0, "queue full")
    return ChatTiming(None, time.perf_counter() - started, 0, "the event stream ended without an answer")


async def _many(url: str, endpoint: Endpoint, payloads: list[list[Any]], timeout: float) -> list[ChatTiming]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits, trust_env=False) as http:
        sessions = await asyncio.gather(*(_open(http, endpoint) for _ in payloads))
        chats = (_chat(http, endpoint, data, session) for data, session in zip(payloads, sessions, strict=True))
        return list(await asyncio.gather(*chats))


def run_chats(
    url: str,
    messages: list[str],
    *,
    max_new_tokens: int,
    temperature: float,
    endpoint: Endpoint | None = None,
    timeout: float = 600.0,
) -> list[ChatTiming]:
    """Send every message as a new chat at the same moment and wait for all replies; timings in order."""
    endpoint = endpoint or chat_endpoint(url)
    values = {"temperature": temperature, "max-new-tokens": max_new_tokens}
    payloads = [endpoint.data(m, **values) for m in messages]
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # the usual case: no event loop in this thread
        return asyncio.run(_many(url, endpoint, payloads, timeout))
    # Called from inside an event loop (Playwright's sync API keeps one): run ours in a thread of its own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _many(url, endpoint, payloads, timeout)).result()
