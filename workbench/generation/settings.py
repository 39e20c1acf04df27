"""Generation settings, reply statistics and chat messages: the plain data every UI passes around.

Torch-free on purpose, so the store, the dashboard and the CLI can validate and record settings
without loading a model. `GenerationSettings` checks itself on construction and raises
`WorkbenchError` with one sentence; `check_messages` does the same for a conversation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from workbench.errors import WorkbenchError

ROLES = ("system", "user", "assistant")
FINISH_REASONS = ("eos", "stop", "length", "cancelled")
MAX_SEED = 2**32 - 1
# Past 1.5 a LoRA's delta is extrapolated beyond what training saw; the small models here drift into noise by 2.
MAX_STRENGTH = 1.5

Message = dict[str, str]
EMPTY_MESSAGE = "The message is empty: type something to send."


def _number(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool) or value is None:
        raise WorkbenchError(f"{name} must be a number, not {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise WorkbenchError(f"{name} must be a number, not {value!r}.") from None
    if math.isnan(number) or math.isinf(number):
        raise WorkbenchError(f"{name} must be a finite number, not {value!r}.")
    if kind is int:
        if number != int(number):
            raise WorkbenchError(f"{name} must be a whole number, not {value!r}.")
        return int(number)
    return number


@dataclass(frozen=True)
class GenerationSettings:
    """How to sample one reply. Values are checked and normalised on construction.

    Attributes:
        temperature: Sampling temperature; 0 means greedy decoding. Must be >= 0.
        top_p: Nucleus sampling mass, in (0, 1]; 1 disables it.
        top_k: Keep only the k most likely tokens; 0 disables it.
        min_p: Drop tokens less likely than this share of the most likely one's probability, in [0, 1); 0 disables
            it (applied after top-p, as transformers and llama.cpp's chain here both do).
        max_new_tokens: Most tokens to generate, >= 1 (the engine also caps it at the context window).
        repetition_penalty: > 0; 1 disables it, above 1 discourages repeats.
        seed: Random seed for sampling; None picks one (and the reply's stats record it).
        stop: Strings that end the reply when generated; they are not included in the text.
        adapter_strength: How strongly the LoRA adapter is applied, in [0, MAX_STRENGTH]: its scale times this
            (1 = as trained, 0 = the base model's tokens exactly). The base model has no adapter and ignores it.
    """

    # The defaults are the sampling that answers the embedded model's first questions best: measured with
    # `bench --case demo_quality` (20 simple prompts x 6 seeds, llama.cpp), 0.3/0.9/1.05 answered 73% right, 0.2/0.9/
    # 1.1 67%, 0.4/0.9/1.1 71%, greedy 65% (3 seeds), the old defaults (0.7/0.95/1.0) 63%, rambling where they missed.
    temperature: float = 0.3
    top_p: float = 0.9
    top_k: int = 50
    min_p: float = 0.0
    max_new_tokens: int = 256
    repetition_penalty: float = 1.05
    seed: int | None = None
    stop: tuple[str, ...] = ()
    adapter_strength: float = 1.0

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("temperature", _number("Temperature", self.temperature, float))
        if self.temperature < 0:
            raise WorkbenchError(f"Temperature must be 0 or more (0 means greedy), not {self.temperature:g}.")
        put("top_p", _number("Top-p", self.top_p, float))
        if not 0 < self.top_p <= 1:
            raise WorkbenchError(f"Top-p must be above 0 and at most 1, not {self.top_p:g}.")
        put("top_k", _number("Top-k", self.top_k, int))
        if self.top_k < 0:
            raise WorkbenchError(f"Top-k must be 0 (off) or more, not {self.top_k}.")
        put("min_p", _number("Min-p", self.min_p, float))
        if not 0 <= self.min_p < 1:
            raise WorkbenchError(f"Min-p must be at least 0 (off) and below 1, not {self.min_p:g}.")
        put("max_new_tokens", _number("Max new tokens", self.max_new_tokens, int))
        if self.max_new_tokens < 1:
            raise WorkbenchError(f"Max new tokens must be at least 1, not {self.max_new_tokens}.")
        put("repetition_penalty", _number("Repetition penalty", self.repetition_penalty, float))
        if self.repetition_penalty <= 0:
            raise WorkbenchError(f"Repetition penalty must be above 0, not {self.repetition_penalty:g}.")
        if self.seed is not None and self.seed != "":
            put("seed", _number("Seed", self.seed, int))
            if not 0 <= self.seed <= MAX_SEED:
                raise WorkbenchError(f"Seed must be between 0 and {MAX_SEED}, not {self.seed}.")
        else:
            put("seed", None)
        put("stop", parse_stop(self.stop))
        put("adapter_strength", _number("Adapter strength", self.adapter_strength, float))
        if not 0 <= self.adapter_strength <= MAX_STRENGTH:
            raise WorkbenchError(
                f"Adapter strength must be from 0 (the base model) to {MAX_STRENGTH:g} (1 = as trained), "
                f"not {self.adapter_strength:g}."
            )

    @property
    def greedy(self) -> bool:
        """True when decoding is greedy (temperature 0)."""
        return self.temperature == 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (stop strings as a list)."""
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationSettings:
        """Build from a mapping, ignoring keys that are not settings."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def replace(self, **changes: Any) -> GenerationSettings:
        """A copy with some fields changed (validated again)."""
        return GenerationSettings.from_dict({**self.to_dict(), **changes})


def parse_stop(stop: str | Iterable[str] | None) -> tuple[str, ...]:
    """Stop strings from a list, or from one string with one stop string per line (UI and CLI form).

    Escapes `\\n` and `\\t` typed in a text box become real newlines and tabs.
    """
    if stop is None:
        return ()
    items = stop.splitlines() if isinstance(stop, str) else list(stop)
    out = []
    for item in items:
        if not isinstance(item, str):
            raise WorkbenchError(f"Stop strings must be text, not {item!r}.")
        item = item.replace("\\n", "\n").replace("\\t", "\t")
        if item and item not in out:
            out.append(item)
    return tuple(out)


def check_messages(messages: Sequence[Mapping[str, Any]]) -> list[Message]:
    """Validate a conversation and return it as plain `{"role", "content"}` dicts.

    Rules: roles are system/user/assistant; a system message may only come first; the last message
    is the user's and is not empty.
    """
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise WorkbenchError("The conversation is empty: send a message.")
    clean: list[Message] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise WorkbenchError(f"Message {i + 1} must be an object with a role and a content.")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise WorkbenchError(f"Message {i + 1} has role {role!r}; it must be one of {', '.join(ROLES)}.")
        if role == "system" and i != 0:
            raise WorkbenchError(f"Message {i + 1} is a system message; only the first message may be one.")
        if not isinstance(content, str):
            raise WorkbenchError(f"Message {i + 1} must have text content.")
        clean.append({"role": role, "content": content})
    if clean[-1]["role"] != "user":
        raise WorkbenchError("The last message must be the user's.")
    if not clean[-1]["content"].strip():
        raise WorkbenchError(EMPTY_MESSAGE)
    return clean


def message_text(content: Any, _depth: int = 0) -> str:
    """The text of a message's content: a string, or a list of parts such as `{"type": "text", "text": ...}`
    (the form chat UIs like Gradio 6 pass); non-text parts, and parts nested deeper than any UI sends, are
    left out (a crafted, deeply nested request must not exhaust the stack)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        text = content.get("text")
        return text if isinstance(text, str) else ""
    if isinstance(content, Sequence) and _depth < 3:
        return "".join(message_text(part, _depth + 1) for part in content)
    return ""


def plain_history(history: Any) -> list[dict[str, str]]:
    """A chat UI's history as plain {"role", "content"} messages (content parts joined into text); anything that
    is not a list of messages is refused in one sentence (an API caller can send any JSON)."""
    if history is None:
        return []
    if not isinstance(history, list) or not all(isinstance(m, Mapping) and "role" in m for m in history):
        raise WorkbenchError("The history must be a list of messages, each with a role and a content.")
    return [{"role": m["role"], "content": message_text(m.get("content"))} for m in history]


def conversation(
    history: Sequence[Mapping[str, Any]] | None, message: str, system_prompt: str | None = ""
) -> list[Message]:
    """Messages for the engine from a chat history, a new user message and an optional system prompt.

    History entries are `{"role", "content"}` dicts (content as text or text parts); system entries in
    the history are ignored because the system prompt is given separately.
    """
    messages: list[Message] = []
    if system_prompt and system_prompt.strip():
        messages.append({"role": "system", "content": system_prompt.strip()})
    for i, turn in enumerate(history or []):
        if not isinstance(turn, Mapping) or turn.get("role") not in ROLES:
            raise WorkbenchError(f"History entry {i + 1} must be an object with role user or assistant.")
        if turn["role"] != "system":
            messages.append({"role": turn["role"], "content": message_text(turn.get("content"))})
    messages.append({"role": "user", "content": message if isinstance(message, str) else ""})
    return messages


@dataclass
class ReplyStats:
    """What happened while generating one reply.

    Attributes:
        model: Base model name.
        adapter: Adapter name, or None for the base model.
        prompt_tokens: Tokens in the (possibly trimmed) prompt.
        new_tokens: Tokens generated.
        ttft_s: Seconds from the request to the first generated token (queue wait included).
        tokens_per_s: New tokens per second of generation (from its start, queue wait excluded).
        total_s: Seconds from the request to the end of the reply.
        queued_s: Seconds spent waiting for another reply on the same model to finish.
        finish_reason: "eos", "stop" (a stop string), "length" (max new tokens) or "cancelled".
        trimmed_turns: Oldest messages dropped to fit the context window (never the system prompt).
        seed: The seed used (the given one, or the one picked).
        settings: The generation settings, as a dict.
        backend: What generated it: "transformers", "llamacpp" or "openai" (a remote model).
        details: What a backend adds: for a remote model the server URL, its model name, the settings sent,
            the usage it reported and the settings it does not take ("not_applied").
        completion: True when a base model without a chat template continued the text (completion mode).
    """

    model: str
    adapter: str | None
    prompt_tokens: int = 0
    new_tokens: int = 0
    ttft_s: float | None = None
    tokens_per_s: float = 0.0
    total_s: float = 0.0
    queued_s: float = 0.0
    finish_reason: str = "length"
    trimmed_turns: int = 0
    seed: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    backend: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    completion: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def summary(self) -> str:
        """One line for people: tokens, speed, first-token latency, why it stopped."""
        parts = [
            f"{self.new_tokens} token{'' if self.new_tokens == 1 else 's'}",
            f"{self.tokens_per_s:.1f} tok/s",
            f"first token {self.ttft_s:.2f} s" if self.ttft_s is not None else "",
            f"prompt {self.prompt_tokens} tokens",
            f"stopped: {self.finish_reason}",
            f"seed {self.seed}",
            self.backend,
        ]
        if self.trimmed_turns:
            parts.append(f"{self.trimmed_turns} oldest messages trimmed to fit the context window")
        if self.completion:
            parts.append("completion mode (the model has no chat template)")
        if self.details.get("not_applied"):
            parts.append(f"not applied by the server: {', '.join(self.details['not_applied'])}")
        return " · ".join(p for p in parts if p)
