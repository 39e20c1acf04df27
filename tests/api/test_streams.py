"""A streamed reply whose client leaves before the first event: Starlette cancels the response before its
generator ever ran, and the reply is still cancelled and the visitor's count released. In process, no model.

Run: .venv/bin/python -m pytest -q tests/api/test_streams.py
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from tests.fixtures.aio import run
from workbench.api.streams import stream_reply
from workbench.generation.settings import ReplyStats
from workbench.generation.streaming import Reply


def test_a_client_gone_before_the_first_event_still_frees_the_reply_and_its_count():
    reply = Reply(ReplyStats("test", None), (), time.perf_counter())  # never closed: a reply still generating
    released = []
    state = SimpleNamespace(settings=SimpleNamespace(api_keys=()))
    response = stream_reply(state, reply, lambda *a: {}, False, lambda *a: None, lambda: released.append(1), role=True)
    sent = []

    async def receive():
        return {"type": "http.disconnect"}  # the client left at once

    async def send(message):
        sent.append(message)
        await asyncio.sleep(0.05)  # the disconnect is seen while the headers go out

    scope = {"type": "http", "asgi": {"spec_version": "2.0"}, "method": "POST", "path": "/v1/chat/completions"}
    run(response(scope, receive, send))
    assert reply.cancelled.is_set() and released == [1]
