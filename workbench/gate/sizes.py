"""The largest request one caller may send: a chat (message, system prompt, history, stop strings, new tokens) and
the reply the token view reads back.

The browser's sliders and text boxes limit nothing (any event can be called directly through Gradio's queue), so
every server function measures its request here, before any tokenizer or lock sees it. The owner of the app
(`Settings.is_owner`) gets `OWNER`; every other caller `visitor_sizes(settings)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings

VISITOR_BODY = 2 * 1024 * 1024  # a request body: a visitor's longest chat (100,000 characters) as JSON, with room
OWNER_BODY = 32 * 1024 * 1024


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


def check_reply(sizes: Sizes, reply: Any) -> None:
    """Raise WorkbenchError when a reply sent back for reading (the token view) is longer than `sizes` allows."""
    length = measure(reply, sizes.reply_chars)
    if length > sizes.reply_chars:
        raise WorkbenchError(f"The reply to read is over {sizes.reply_chars:,} characters, the limit here.")
