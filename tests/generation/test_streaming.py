"""A Reply read on an event loop (`Reply.apieces`): the same pieces as `pieces`, the first text and the end waking
the loop at once, and an early close cancelling the backend and waiting for it to let go.

Run: .venv/bin/python -m pytest -q tests/generation/test_streaming.py
"""

from __future__ import annotations

import threading
import time

from tests.fixtures.aio import run
from workbench.generation.settings import ReplyStats
from workbench.generation.streaming import Reply


def _backend(reply: Reply, words: list[str], pause: float, first_after: float = 0.0) -> threading.Thread:
    """A backend thread pushing `words` every `pause` seconds (after `first_after`), stopping when told to."""

    def run() -> None:
        time.sleep(first_after)
        reply.begin()
        made = 0
        for word in words:
            made += 1
            reply.count_tokens()
            if reply.push(word):
                break
            time.sleep(pause)
        reply.finish_stats(made, "length")
        reply.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_apieces_gives_every_word_in_order_with_the_first_at_once():
    reply = Reply(ReplyStats("test", None), (), time.perf_counter())
    words = [f"w{i} " for i in range(12)]

    async def read() -> tuple[list[str], float]:
        started = time.perf_counter()
        first_at = None
        pieces = []
        async for piece in reply.apieces(lambda: 10.0):  # a long interval: only the first text and the end wake it
            first_at = first_at or time.perf_counter() - started
            pieces.append(piece)
        return pieces, first_at

    thread = _backend(reply, words, 0.01, first_after=0.2)
    pieces, first_at = run(read())
    thread.join()
    assert "".join(pieces) == "".join(words) == reply.text
    assert len(pieces) == 2  # the first text, then the rest when the reply ended (not after the 10 s interval)
    assert first_at < 2.0


def test_closing_apieces_early_cancels_and_waits_for_the_backend():
    reply = Reply(ReplyStats("test", None), (), time.perf_counter())

    async def read_one() -> str:
        pieces = reply.apieces(lambda: 0.01)
        first = await anext(pieces)
        await pieces.aclose()
        return first

    thread = _backend(reply, ["word "] * 1000, 0.01)
    first = run(read_one())
    assert first and first == "word " * (len(first) // 5)  # what had arrived when the reader woke
    assert reply.done and reply.cancelled.is_set()  # the backend let go before aclose returned
    thread.join(timeout=5)
    assert reply.stats.new_tokens < 1000


def test_acancel_if_running_waits_for_the_backend():
    reply = Reply(ReplyStats("test", None), (), time.perf_counter())
    thread = _backend(reply, ["word "] * 1000, 0.01)
    run(reply.acancel_if_running())
    assert reply.done
    thread.join(timeout=5)
    run(reply.acancel_if_running())  # once closed, at once
