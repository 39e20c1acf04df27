"""What one visitor may ask of the app: sizes of a chat request, and how often they may generate or vote.

The browser's sliders and text boxes limit nothing (any event can be called directly through Gradio's
queue), so every server function checks its request here. The owner of the app (admin actions open: it
listens on loopback, or WORKBENCH_ADMIN_OPEN=1) gets the larger size limits and no rate limits; every other
caller is a visitor. Rates are counted per client address as our own proxy saw it (`workbench.access.client_address`),
never by anything the client chooses, such as Gradio's session hash.

Pure Python with no Gradio import, so the dashboard's pages use the same limits.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings


@dataclass(frozen=True)
class Sizes:
    """The largest chat request a caller may send."""

    message_chars: int
    system_chars: int
    history_messages: int
    history_chars: int
    stop_strings: int
    stop_chars: int
    max_new_tokens: int


OWNER = Sizes(
    message_chars=200_000,
    system_chars=50_000,
    history_messages=1_000,
    history_chars=1_000_000,
    stop_strings=16,
    stop_chars=200,
    max_new_tokens=8_192,
)


def visitor_sizes(settings: Settings) -> Sizes:
    """A visitor's limits: a long conversation fits, a flood does not."""
    return Sizes(
        message_chars=8_000,
        system_chars=4_000,
        history_messages=200,
        history_chars=100_000,
        stop_strings=8,
        stop_chars=64,
        max_new_tokens=settings.visitor_max_new_tokens,
    )


def sizes_for(settings: Settings) -> Sizes:
    """The limits that apply to callers of this app."""
    return OWNER if settings.admin_without_token else visitor_sizes(settings)


def check_chat(
    sizes: Sizes, message: str, system_prompt: str, history: Sequence[dict], generation: GenerationSettings
) -> None:
    """Raise WorkbenchError with one sentence when a chat request is larger than `sizes` allows."""
    if len(message or "") > sizes.message_chars:
        raise WorkbenchError(f"The message is {len(message):,} characters; the limit here is {sizes.message_chars:,}.")
    if len(system_prompt or "") > sizes.system_chars:
        raise WorkbenchError(
            f"The system prompt is {len(system_prompt):,} characters; the limit here is {sizes.system_chars:,}."
        )
    if len(history) > sizes.history_messages:
        raise WorkbenchError(
            f"The conversation has {len(history):,} messages; the limit here is {sizes.history_messages:,}: "
            "clear it to go on."
        )
    total = sum(len(str(m.get("content") or "")) for m in history)
    if total > sizes.history_chars:
        raise WorkbenchError(
            f"The conversation holds {total:,} characters; the limit here is {sizes.history_chars:,}: "
            "clear it to go on."
        )
    if len(generation.stop) > sizes.stop_strings:
        raise WorkbenchError(f"There are {len(generation.stop)} stop strings; the limit here is {sizes.stop_strings}.")
    if any(len(s) > sizes.stop_chars for s in generation.stop):
        raise WorkbenchError(f"A stop string may be at most {sizes.stop_chars} characters long here.")
    if generation.max_new_tokens > sizes.max_new_tokens:
        raise WorkbenchError(
            f"Max new tokens is {generation.max_new_tokens:,}; the limit here is {sizes.max_new_tokens:,}."
        )


class RateLimit:
    """At most `count` events per `period_s` seconds per key (a sliding window); count 0 means no limit."""

    MAX_KEYS = 50_000  # keys remembered at once, so a flood of addresses cannot exhaust memory

    def __init__(self, count: int, period_s: float, what: str) -> None:
        self.count = count
        self.period_s = period_s
        self.what = what
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def take(self, key: str) -> None:
        """Count one event for `key`, or raise WorkbenchError saying when it may try again."""
        if self.count <= 0:
            return
        now = time.monotonic()
        with self._lock:
            times = self._seen.setdefault(key, deque())
            while times and now - times[0] > self.period_s:
                times.popleft()
            if len(times) >= self.count:
                wait = int(self.period_s - (now - times[0])) + 1
                raise WorkbenchError(
                    f"You have reached the limit of {self.count} {self.what} per {self._period()}: "
                    f"try again in {wait} seconds."
                )
            times.append(now)
            if len(self._seen) > self.MAX_KEYS:
                self._seen = {k: v for k, v in self._seen.items() if v and now - v[-1] <= self.period_s}

    def _period(self) -> str:
        return {60: "minute", 3600: "hour"}.get(int(self.period_s), f"{self.period_s:g} seconds")


def reply_limit(settings: Settings) -> RateLimit:
    """Replies a visitor may ask for per minute; no limit where the owner runs the app (loopback)."""
    return RateLimit(0 if settings.admin_without_token else settings.rate_limit, 60.0, "replies")


def vote_limit(settings: Settings) -> RateLimit:
    """Votes a visitor may cast per hour; no limit where the owner runs the app (loopback)."""
    return RateLimit(0 if settings.admin_without_token else settings.vote_limit, 3600.0, "votes")
