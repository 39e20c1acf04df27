"""A reply being generated: the iterator a caller reads text from, and the streamer generation writes to.

`ChatEngine.stream()` returns a `Reply`; `generate()` runs in a background thread and hands tokens to a
`TimedStreamer`, which records timing and passes decoded text on; the `Reply` filters out stop strings
and yields what the user sees. Cancelling sets an event that the engine's stopping criterion reads after
every token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from workbench.errors import WorkbenchError
from workbench.generation.settings import ReplyStats


class _StopFilter:
    """Holds back streamed text that could be the start of a stop string, and cuts at a stop string.

    transformers' `stop_strings` ends generation at the right token but the token text still reaches
    the streamer; this keeps the stop string (and any prefix of it) out of what the user sees.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(stops)
        self.buffer = ""
        self.hit = False

    def feed(self, chunk: str) -> str:
        if self.hit:
            return ""
        self.buffer += chunk
        cuts = [i for i in (self.buffer.find(s) for s in self.stops) if i >= 0]
        if cuts:
            out, self.buffer, self.hit = self.buffer[: min(cuts)], "", True
            return out
        keep = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(self.buffer)), keep, -1):
                if self.buffer.endswith(stop[:n]):
                    keep = n
                    break
        out, self.buffer = self.buffer[: len(self.buffer) - keep], self.buffer[len(self.buffer) - keep :]
        return out

    def flush(self) -> str:
        out, self.buffer = ("" if self.hit else self.buffer), ""
        return out


class Reply:
    """A reply being generated in a background thread. Iterate it for text chunks.

    After iteration ends, `text` holds the whole reply and `stats` its `ReplyStats`. `cancel()` may
    be called from any thread; closing the iterator early cancels too, so an abandoned request never
    keeps the model busy.
    """

    def __init__(self, stats: ReplyStats, stops: Sequence[str], started: float) -> None:
        self.stats = stats
        self.text = ""
        self.cancelled = threading.Event()
        self.error: BaseException | None = None
        self.output_ids: list[int] = []
        self.first_token_at: float | None = None
        self.tokens_streamed = 0  # new tokens handed to the streamer so far (the reply's progress)
        self.generation_started: float | None = None
        self._started = started
        self._filter = _StopFilter(stops)
        self._streamer: Any = None
        self._thread: threading.Thread | None = None

    def cancel(self) -> None:
        """Stop generating after the current token."""
        self.cancelled.set()

    def __iter__(self) -> Iterator[str]:
        try:
            for chunk in self._streamer:
                visible = self._filter.feed(chunk)
                if visible:
                    self.text += visible
                    yield visible
            rest = self._filter.flush()
            if rest:
                self.text += rest
                yield rest
        finally:
            self.cancel_if_running()
        if self.error is not None:
            raise WorkbenchError(f"Generation failed: {self.error}") from self.error

    def cancel_if_running(self) -> None:
        """Cancel and wait for the generation thread (used when the consumer stops early)."""
        if self._thread is not None and self._thread.is_alive():
            self.cancel()
            self._thread.join()

    def result(self) -> tuple[str, ReplyStats]:
        """Consume the whole reply and return its text and stats."""
        for _ in self:
            pass
        return self.text, self.stats


class TimedStreamer:
    """Wraps transformers' TextIteratorStreamer to record when the first new token arrived.

    `generate` only calls `put` and `end` on a streamer; `end` is idempotent here because the engine
    also ends the stream itself when generation fails before transformers could.
    """

    def __init__(self, tokenizer: Any, reply: Reply) -> None:
        from transformers import TextIteratorStreamer

        self._inner = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._reply = reply
        self._prompt_seen = False
        self._ended = False

    def put(self, value: Any) -> None:
        if self._prompt_seen:
            if self._reply.first_token_at is None:
                self._reply.first_token_at = time.perf_counter()
            self._reply.tokens_streamed += value.numel()
        self._prompt_seen = True
        self._inner.put(value)

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self._inner.end()

    def __iter__(self) -> Iterator[str]:
        return iter(self._inner)
