"""A reply being generated: what a caller reads text from, and what a backend writes tokens into.

`ChatEngine.stream()` returns a `Reply` at once; a backend generates in the background and calls
`count_tokens()` for each new token, `push()` with text as it is decoded, and `close()` once, after it has
filled in the stats. `push()` holds back text that could be the start of a stop string and tells the backend
to stop when a stop string appeared or the reply was cancelled, so stop strings and cancel mean the same on
every backend. The caller iterates the Reply for the visible text (or `pieces(every)` for text gathered over
an interval, `apieces(every)` for the same on an event loop); `cancel()` works from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

from workbench.errors import WorkbenchError
from workbench.generation.settings import ReplyStats

_END = object()


class _StopFilter:
    """Holds back streamed text that could be the start of a stop string, and cuts at a stop string."""

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
    """A reply being generated in the background. Iterate it for text chunks.

    After iteration ends, `text` holds the whole reply and `stats` its `ReplyStats`. `cancel()` may be
    called from any thread; closing the iterator early cancels too, so an abandoned request never keeps a
    model slot busy.
    """

    def __init__(self, stats: ReplyStats, stops: Sequence[str], started: float) -> None:
        self.stats = stats
        self.text = ""
        self.cancelled = threading.Event()
        self.error: BaseException | None = None
        self.first_token_at: float | None = None
        self.tokens_streamed = 0  # new tokens generated so far (the reply's progress)
        self.generation_started: float | None = None
        self.logprobs: list[dict] = []  # per generated token, when the request asked (`Extras.logprobs`)
        self._started = started
        self._filter = _StopFilter(stops)
        self._chunks: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = threading.Event()
        self._wake: Callable[[], None] | None = None  # an event loop's consumer (`apieces`), told of the first text
        self._told_first = False

    # --- the caller's side ---------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop generating after the current token."""
        self.cancelled.set()

    def __iter__(self) -> Iterator[str]:
        try:
            while (chunk := self._chunks.get()) is not _END:
                self.text += chunk
                yield chunk
        finally:
            self.cancel_if_running()
        self._raise_error()

    def pieces(self, every: Callable[[], float]) -> Iterator[str]:
        """The reply's text in pieces: the first text as soon as it exists, then what arrived meanwhile every
        `every()` seconds, and the rest as soon as the reply ends.

        A consumer that forwards each piece (the app sends each one to the page) wakes once per interval instead
        of once per token, so it takes less of the CPU the backend generates with. Closing it early cancels.
        """
        try:
            chunk = self._chunks.get()  # the first text: no waiting beyond the backend
            while True:
                text, ended = self._drain(chunk)
                if text:
                    yield text
                if ended:
                    break
                self._closed.wait(every())  # returns early when the reply ends
                chunk = self._next_now()
        finally:
            self.cancel_if_running()
        self._raise_error()

    async def apieces(self, every: Callable[[], float]) -> AsyncIterator[str]:
        """`pieces` for a consumer on an event loop: the same pieces, awaited on the loop.

        A server that runs a sync generator hands each `next()` to a worker thread (Gradio does); on a small
        machine that hop per update is CPU taken from generation. The backend wakes the loop twice per reply (its
        first text, its end), never per token. Closing it early cancels, and waits (on the loop) until the backend
        has let go of the reply.
        """
        loop = asyncio.get_running_loop()
        woke = self._loop_event()
        try:
            chunk = self._next_now()
            while chunk is None:  # the first text: no waiting beyond the backend
                await woke.wait()
                woke.clear()
                chunk = self._next_now()
            while True:
                text, ended = self._drain(chunk)
                if text:
                    yield text
                if ended:
                    break
                woke.clear()
                if not self._closed.is_set():
                    timer = loop.call_later(every(), woke.set)
                    await woke.wait()  # set early when the reply ends
                    timer.cancel()
                chunk = self._next_now()
        finally:
            await self.acancel_if_running()
        self._raise_error()

    async def acancel_if_running(self) -> None:
        """`cancel_if_running` for a consumer on an event loop: the wait for the backend is awaited."""
        if self._closed.is_set():
            return
        woke = self._loop_event()
        self.cancel()
        while not self._closed.is_set():
            await woke.wait()  # `close` sets it (after `_closed`)
            woke.clear()

    def _loop_event(self) -> asyncio.Event:
        """An event of the running loop that the backend sets on the first text and at the end (see `_tell`)."""
        loop, event = asyncio.get_running_loop(), asyncio.Event()
        self._wake = lambda: loop.call_soon_threadsafe(event.set)
        return event

    def _drain(self, chunk: object | None) -> tuple[str, bool]:
        """The text of `chunk` and of every chunk that has arrived after it, without waiting (added to `text`), and
        whether the reply ended among them."""
        text = ""
        while chunk is not None:
            if chunk is _END:
                self.text += text
                return text, True
            text += chunk
            chunk = self._next_now()
        self.text += text
        return text, False

    def _next_now(self) -> object | None:
        try:
            return self._chunks.get_nowait()
        except queue.Empty:
            return None

    def _raise_error(self) -> None:
        if isinstance(self.error, WorkbenchError):  # already one sentence for people
            raise WorkbenchError(str(self.error)) from self.error
        if self.error is not None:
            raise WorkbenchError(f"Generation failed: {self.error}") from self.error

    def cancel_if_running(self) -> None:
        """Cancel and wait until the backend has let go of the reply (used when the consumer stops early)."""
        if not self._closed.is_set():
            self.cancel()
            self._closed.wait()

    def result(self) -> tuple[str, ReplyStats]:
        """Consume the whole reply and return its text and stats."""
        for _ in self:
            pass
        return self.text, self.stats

    @property
    def done(self) -> bool:
        """True once the backend has finished with this reply (its stats are final)."""
        return self._closed.is_set()

    # --- the backend's side --------------------------------------------------------------------------------

    @property
    def stop_hit(self) -> bool:
        """True once a stop string appeared in the text."""
        return self._filter.hit

    def should_stop(self) -> bool:
        """True when the backend should stop generating: cancelled, or a stop string appeared."""
        return self.cancelled.is_set() or self._filter.hit

    def begin(self) -> None:
        """The backend starts generating this reply (the time before this was spent waiting)."""
        self.generation_started = time.perf_counter()
        self.stats.queued_s = self.generation_started - self._started

    def count_tokens(self, n: int = 1) -> None:
        """`n` new tokens were generated."""
        if n and self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.tokens_streamed += n

    def push(self, text: str) -> bool:
        """Hand over newly decoded text; returns True when generation should stop (see `should_stop`)."""
        visible = self._filter.feed(text)
        if visible:
            self._chunks.put(visible)
            if not self._told_first:
                self._told_first = True
                self._tell()
        return self.should_stop()

    def finish_stats(self, new_tokens: int, finish_reason: str) -> None:
        """Fill in the timing stats of a reply that made `new_tokens` tokens and ended for `finish_reason`."""
        stats, now = self.stats, time.perf_counter()
        stats.new_tokens = new_tokens
        stats.total_s = now - self._started
        if self.first_token_at is not None:
            stats.ttft_s = self.first_token_at - self._started
        if self.generation_started is not None and new_tokens:
            stats.tokens_per_s = new_tokens / max(now - self.generation_started, 1e-9)
        stats.finish_reason = finish_reason

    def close(self, error: BaseException | None = None) -> None:
        """No more text: release the caller (once). Call after the stats are final."""
        if self._closed.is_set():
            return
        rest = self._filter.flush()
        if rest:
            self._chunks.put(rest)
        self.error = error
        self._closed.set()
        self._chunks.put(_END)
        self._tell()

    def _tell(self) -> None:
        """Wake an event loop's consumer, if one waits (after the chunk it should find is queued)."""
        wake = self._wake
        if wake is not None:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody is left to wake
                wake()


def collect(replies: list[Reply], progress: Callable[[int, int], None] | None = None) -> list[tuple[str, ReplyStats]]:
    """Each reply's (text, stats), in order, waiting for each; `progress(done, total)` after each one. If one
    fails, the others are cancelled and its error is raised."""
    results = []
    try:
        for reply in replies:
            results.append(reply.result())
            if progress is not None:
                progress(len(results), len(replies))
    except BaseException:
        for reply in replies:
            reply.cancel()
        raise
    return results


def finish_reason(reply: Reply, new_tokens: int, max_new_tokens: int, ended_on_eos: bool) -> str:
    """Why a reply ended, the same way on every backend: a stop string, end of sequence, cancel, or length."""
    if reply.stop_hit:
        return "stop"
    if ended_on_eos:
        return "eos"
    if reply.cancelled.is_set() and new_tokens < max_new_tokens:
        return "cancelled"
    return "length"
