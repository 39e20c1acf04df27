"""Each input of an event, declared once: its type, bounds and size. The declaration builds the component a person
sees (`workbench.ui.fields`) and checks the value a request carries, before anything else runs.

    Number("Temperature", low=0, high=2).check(value)       # a finite number in [0, 2], not a string or a bool
    Text("System prompt", chars=4_000).check(value)          # text of at most 4,000 characters
    Choice("Method", options=("sft", "dpo")).check(value)    # one of the options
    Messages("Conversation", messages=200, chars=100_000)    # a chat history of bounded length and text

A browser limits nothing (any Gradio event can be called through `/gradio_api/queue/join` by its index with any
values), so `check` trusts nothing about `value`: it may be any JSON (a string where a number belongs, a list of a
million items, NaN, a deeply nested object). Every check costs at most time linear in the field's own bound, never
in what was sent, and raises WorkbenchError with one sentence that names the field. A value that passes is the
right type and size for the function behind the event, which then checks its own rights.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

NAME_CHARS = 300  # a choice that is a name (a checkpoint, a run, a pair): longer is not a name of ours
FILE_KEYS = frozenset({"path", "url", "size", "orig_name", "mime_type", "is_stream", "meta"})


def _number(value: Any) -> float | None:
    """`value` as a finite float, or None when it is not a finite number (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _short(value: Any, limit: int = 40) -> str:
    """A glimpse of a refused value for the sentence: its type, and a short repr for a small scalar."""
    if isinstance(value, str):
        return f"text of {len(value):,} characters" if len(value) > limit else repr(value)
    if isinstance(value, (bool, int, float)) or value is None:
        return repr(value)[:limit]
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class Field:
    """One input: its label (as the person sees it) and whether it may be empty (None)."""

    label: str
    optional: bool = True

    def check(self, value: Any) -> None:
        """Raise WorkbenchError with one sentence unless `value` fits this declaration."""
        if value is None:
            if not self.optional:
                raise WorkbenchError(f"{self.label} is missing.")
            return
        self._check(value)

    def _check(self, value: Any) -> None:
        raise NotImplementedError

    def refuse(self, what: str) -> WorkbenchError:
        return WorkbenchError(f"{self.label} {what}.")


@dataclass(frozen=True)
class Number(Field):
    """A finite number in [low, high] (either bound may be None: open), whole when `integer`."""

    low: float | None = None
    high: float | None = None
    integer: bool = False

    def _check(self, value: Any) -> None:
        number = _number(value)
        if number is None:
            raise self.refuse(f"must be a finite number, not {_short(value)}")
        if self.integer and number != int(number):
            raise self.refuse(f"must be a whole number, not {number:g}")
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            low = "-∞" if self.low is None else f"{self.low:g}"
            high = "∞" if self.high is None else f"{self.high:g}"
            raise self.refuse(f"must be between {low} and {high}, not {number:g}")


@dataclass(frozen=True)
class Text(Field):
    """Text of at most `chars` characters."""

    chars: int = 1_000

    def _check(self, value: Any) -> None:
        if not isinstance(value, str):
            raise self.refuse(f"must be text, not {_short(value)}")
        if len(value) > self.chars:
            raise self.refuse(f"is {len(value):,} characters; the limit here is {self.chars:,}")


@dataclass(frozen=True)
class Flag(Field):
    """True or False."""

    def _check(self, value: Any) -> None:
        if not isinstance(value, bool):
            raise self.refuse(f"must be true or false, not {_short(value)}")


@dataclass(frozen=True)
class Choice(Field):
    """One of `options` (or, with `multiple`, a list of them). With `dynamic` the options change per page (the
    checkpoints on disk): then only the type and length are checked here, and the function checks the name."""

    options: tuple[Any, ...] = ()
    dynamic: bool = False
    multiple: bool = False

    def _check(self, value: Any) -> None:
        if self.multiple:
            if not isinstance(value, list):
                raise self.refuse(f"must be a list of choices, not {_short(value)}")
            limit = len(self.options) if not self.dynamic else 1_000
            if len(value) > limit:
                raise self.refuse(f"has {len(value):,} choices; there are only {limit:,}")
            for item in value:
                self._one(item)
        else:
            self._one(value)

    def _one(self, value: Any) -> None:
        if isinstance(value, str):
            if len(value) > NAME_CHARS:
                raise self.refuse(f"is {len(value):,} characters long, longer than any choice")
        elif _number(value) is None:
            raise self.refuse(f"must be one of its choices, not {_short(value)}")
        if not self.dynamic and value not in self.options:
            raise self.refuse(f"must be one of its choices, not {_short(value)}")


@dataclass(frozen=True)
class Messages(Field):
    """A chat history: a list of at most `messages` messages (objects with a role and a content) holding at most
    `chars` characters of text in all."""

    messages: int = 200
    chars: int = 100_000

    def _check(self, value: Any) -> None:
        from workbench.gate.sizes import measure

        if not isinstance(value, list):
            raise self.refuse(f"must be a list of messages, not {_short(value)}")
        if len(value) > self.messages:
            raise self.refuse(f"has {len(value):,} messages; the limit here is {self.messages:,}: clear it to go on")
        if any(not isinstance(m, Mapping) for m in value):
            raise self.refuse("must be a list of messages, each an object with a role and a content")
        if measure(value, self.chars) > self.chars:
            raise self.refuse(f"holds more than {self.chars:,} characters, the limit here: clear it to go on")


@dataclass(frozen=True)
class Upload(Field):
    """A file this app received through its own upload route: a file object whose path lies in `folder` (Gradio's
    upload cache). A URL or any other path is refused here, before Gradio's preprocessing would fetch a URL or
    read a server file."""

    folder: str = ""
    files: int = 1

    def _check(self, value: Any) -> None:
        items = value if isinstance(value, list) else [value]
        if len(items) > self.files:
            raise self.refuse(f"takes at most {self.files} file{'s' if self.files != 1 else ''}")
        for item in items:
            if not isinstance(item, Mapping) or not set(item) <= FILE_KEYS or not isinstance(item.get("path"), str):
                raise self.refuse("must be a file uploaded to this app")
            path = item["path"]
            if "://" in path or len(path) > 4_096 or not _inside(path, self.folder):
                raise self.refuse("must be a file uploaded to this app, not a link or a path on the server")


def _inside(path: str, folder: str) -> bool:
    """Whether `path` names something inside `folder` once resolved (no `..` or link leads out of it)."""
    if not folder:
        return False
    try:
        return Path(path).resolve().is_relative_to(Path(folder).resolve())
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class Index(Field):
    """The index of one of `count` examples (a gr.Dataset's click)."""

    count: int = 0

    def _check(self, value: Any) -> None:
        number = _number(value)
        if number is None or number != int(number) or not 0 <= number < self.count:
            raise self.refuse(f"must be the number of one of its {self.count} examples")


@dataclass(frozen=True)
class ServerState(Field):
    """A value the server keeps for the session (gr.State): whatever a client sends for it is not used (Gradio
    takes the session's own value), so only its size is bounded."""

    chars: int = 10_000

    def _check(self, value: Any) -> None:
        from workbench.gate.sizes import measure

        if measure(value, self.chars) > self.chars:
            raise self.refuse("is kept by the server and cannot be sent")


class Refused(WorkbenchError):
    """A value refused by its declaration; `index` is the input's position (None: the values as a whole)."""

    def __init__(self, sentence: str, index: int | None = None) -> None:
        super().__init__(sentence)
        self.index = index


def check_all(fields: Sequence[Field], values: Any) -> None:
    """Check a request's values against its event's declared inputs, in order: the count first, then each value;
    raise Refused with the first refusal's sentence and the input's position."""
    if not isinstance(values, list) or len(values) != len(fields):
        raise Refused(f"This action takes {len(fields)} values.")
    for index, (field, value) in enumerate(zip(fields, values, strict=True)):
        try:
            field.check(value)
            if _has_surrogate(value):
                raise field.refuse("holds text that is not valid Unicode (a lone surrogate)")
        except WorkbenchError as exc:
            raise Refused(str(exc), index) from None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(value: Any) -> bool:
    """Whether any string in `value` holds a lone surrogate: JSON lets a client send one ("\\ud800"), and no
    encoder can write it back out (Gradio's event stream failed on it, mid-answer). Iterative: values may nest deep;
    the field's own check has bounded the value's size first."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False
