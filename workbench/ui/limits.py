"""What one visitor may ask of the app: sizes of a chat request, and how often they may generate or vote.

The browser's sliders and text boxes limit nothing (any event can be called directly through Gradio's
queue), so every server function measures its request here, before any tokenizer or lock sees it. The owner of
the app (`Settings.is_owner`: a caller that really is this machine, or everyone with WORKBENCH_ADMIN_OPEN=1) gets
the larger size limits and no rate limits; every other caller is a visitor. Rates are counted per client address
as our own proxy saw it (`workbench.access.client_address`), never by anything the client chooses, such as
Gradio's session hash.

Pure Python with no Gradio import, so the dashboard's pages use the same limits.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
    reply_chars: int  # the reply the token view reads (it comes back from the browser like the history)


OWNER = Sizes(
    message_chars=200_000,
    system_chars=50_000,
    history_messages=1_000,
    history_chars=1_000_000,
    stop_strings=16,
    stop_chars=200,
    max_new_tokens=8_192,
    reply_chars=400_000,
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
        reply_chars=16_000,  # a reply of 1,024 tokens is about 5,000 characters
    )


def sizes_for(settings: Settings, owner: bool | None = None) -> Sizes:
    """The limits for a caller (`owner`: `Settings.is_owner`), or with `owner` None the largest any caller of this
    app may get (what the page's sliders offer)."""
    if owner is None:
        owner = settings.admin_without_token
    return OWNER if owner else visitor_sizes(settings)


def measure(value: Any, budget: int) -> int:
    """Characters of text in a JSON-like value (strings, and numbers as written), counted without building any
    string and without recursion (an attacker may nest deeply); stops counting once past `budget`."""
    total, stack = 0, [value]
    while stack and total <= budget:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif item is not None:
            total += len(repr(item)) if isinstance(item, (int, float, bool)) else budget + 1
    return total


def check_history(sizes: Sizes, history: Any) -> None:
    """Raise WorkbenchError when a conversation as sent (any shape) holds more messages or text than `sizes`."""
    if history is None:
        return
    if not isinstance(history, (list, tuple)):
        raise WorkbenchError("The conversation must be a list of messages.")
    if len(history) > sizes.history_messages:
        raise WorkbenchError(
            f"The conversation has {len(history):,} messages; the limit here is {sizes.history_messages:,}: "
            "clear it to go on."
        )
    total = measure(history, sizes.history_chars)
    if total > sizes.history_chars:
        raise WorkbenchError(
            f"The conversation holds more than {sizes.history_chars:,} characters, the limit here: clear it to go on."
        )


def check_chat(
    sizes: Sizes, message: str, system_prompt: str, history: Sequence[dict], generation: GenerationSettings
) -> None:
    """Raise WorkbenchError with one sentence when a chat request is larger than `sizes` allows."""
    if not isinstance(message or "", str) or not isinstance(system_prompt or "", str):
        raise WorkbenchError("The message and the system prompt must be text.")
    if len(message or "") > sizes.message_chars:
        raise WorkbenchError(f"The message is {len(message):,} characters; the limit here is {sizes.message_chars:,}.")
    if len(system_prompt or "") > sizes.system_chars:
        raise WorkbenchError(
            f"The system prompt is {len(system_prompt):,} characters; the limit here is {sizes.system_chars:,}."
        )
    check_history(sizes, history)
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

    def take(self, key: str, n: int = 1) -> None:
        """Count `n` events for `key` (all or none: a sweep of 16 generations takes 16), or raise WorkbenchError
        saying when it may try again."""
        if self.count <= 0 or n <= 0:
            return
        if n > self.count:
            raise WorkbenchError(f"That asks for {n} {self.what}; the limit here is {self.count} per {self._period()}.")
        now = time.monotonic()
        with self._lock:
            times = self._seen.setdefault(key, deque())
            while times and now - times[0] > self.period_s:
                times.popleft()
            if len(times) + n > self.count:
                wait = int(self.period_s - (now - times[len(times) + n - self.count - 1])) + 1
                left = self.count - len(times)
                raise WorkbenchError(
                    f"You have reached the limit of {self.count} {self.what} per {self._period()}: "
                    f"try again in {wait} seconds."
                    if n == 1 or not left
                    else f"That asks for {n} {self.what} and you have {left} left this {self._period()}: "
                    f"ask for fewer, or try again in {wait} seconds."
                )
            times.extend([now] * n)
            if len(self._seen) > self.MAX_KEYS:
                self._seen = {k: v for k, v in self._seen.items() if v and now - v[-1] <= self.period_s}

    def _period(self) -> str:
        return {60: "minute", 3600: "hour"}.get(int(self.period_s), f"{self.period_s:g} seconds")


def check_reply(sizes: Sizes, reply: Any) -> None:
    """Raise WorkbenchError when a reply sent back for reading (the token view) is longer than `sizes` allows."""
    length = measure(reply, sizes.reply_chars)
    if length > sizes.reply_chars:
        raise WorkbenchError(f"The reply to read is over {sizes.reply_chars:,} characters, the limit here.")


def reply_limit(settings: Settings) -> RateLimit:
    """Replies a visitor may ask for per minute (the owner is not counted: see `Settings.is_owner`)."""
    return RateLimit(settings.rate_limit, 60.0, "replies")


def vote_limit(settings: Settings) -> RateLimit:
    """Votes a visitor may cast per hour (the owner is not counted)."""
    return RateLimit(settings.vote_limit, 3600.0, "votes")


def checkpoint_kind(checkpoint: str) -> str:
    """What a checkpoint name names, in WORKBENCH_VISITOR_CHECKPOINTS' words: base, adapters or remote."""
    from workbench.generation.router import REMOTE
    from workbench.registry import BASE_NAME

    return "remote" if checkpoint.startswith(REMOTE) else "base" if checkpoint in ("", BASE_NAME) else "adapters"


def may_choose(settings: Settings, owner: bool, checkpoint: str) -> bool:
    """Whether a caller may choose `checkpoint`: the owner any, a visitor what WORKBENCH_VISITOR_CHECKPOINTS
    offers (remote models may cost money, and adapters load into the shared server)."""
    return owner or checkpoint_kind(checkpoint) in settings.visitor_checkpoints


def check_checkpoint(settings: Settings, owner: bool, checkpoint: str | None) -> None:
    """Raise WorkbenchError with one sentence for a checkpoint the caller may not choose (see `may_choose`); the
    one rule of the app (`AppContext.check_checkpoint`) and the dashboard."""
    name = (checkpoint or "") if isinstance(checkpoint, str) else ""
    if len(name) > 300:
        raise WorkbenchError("That checkpoint name is too long.")
    if not may_choose(settings, owner, name):
        what = {"remote": "Remote models", "base": "The base model", "adapters": "Adapters"}[checkpoint_kind(name)]
        raise WorkbenchError(f"{what} are not offered to visitors on this server.")
