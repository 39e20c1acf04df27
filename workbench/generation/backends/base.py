"""The contract between the ChatEngine and what generates text: one `Job` per reply, a `Backend` that runs them.

The engine does everything that must mean the same on every backend (validating messages and settings,
applying the chat template, trimming old turns, choosing the seed, resolving the adapter) and hands the
backend a `Job`: prompt token ids, settings, seed, adapter and the `Reply` to write into. A backend generates
in the background, reports tokens and text through the Reply (which applies stop strings and cancel), fills
in the stats and closes the Reply. Backends are chosen by name (`workbench.generation.backends.BACKENDS`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from workbench.generation.settings import GenerationSettings, Message
from workbench.generation.streaming import Reply
from workbench.registry import Adapter, BaseModel


@dataclass(frozen=True)
class Extras:
    """What a request may ask beyond sampling, on backends that offer it (llama.cpp: `LlamaCppBackend.EXTRAS`).

    Attributes:
        logprobs: None for no log-probabilities; k >= 0 for each generated token's log-probability and the k most
            likely alternatives at its position (in `Reply.logprobs`).
        json_schema: A JSON schema the reply must follow (constrained decoding); None for free text.
    """

    logprobs: int | None = None
    json_schema: dict | None = None

    def asked(self) -> list[str]:
        """The names of what is asked, for a backend's refusal."""
        return [name for name in ("logprobs", "json_schema") if getattr(self, name) is not None]


@dataclass
class Job:
    """One reply to generate.

    Attributes:
        prompt_ids: The prompt in the base model's chat template, already trimmed to fit (empty for a backend
            without a local tokenizer, which sends `messages`).
        settings: Sampling settings (validated).
        seed: The seed to sample with (chosen by the engine when the settings have none).
        adapter: The LoRA adapter to apply, or None for the base model.
        reply: Where tokens, text and stats go.
        messages: The checked conversation the prompt was made from.
        evict: Whether serving this job may drop another loaded adapter to make room for its own (llama.cpp holds
            a few; a visitor's request may load one only while there is room, so no one can make it thrash).
        extras: Log-probabilities and constrained decoding (see `Extras`).
    """

    prompt_ids: list[int]
    settings: GenerationSettings
    seed: int
    adapter: Adapter | None
    reply: Reply
    messages: list[Message] = field(default_factory=list)
    evict: bool = True
    extras: Extras = field(default_factory=Extras)


class Backend(Protocol):
    """What a generation backend provides. See `transformers.TransformersBackend` and `llamacpp.LlamaCppBackend`.

    Attributes:
        name: The backend's name, recorded with every reply ("transformers", "llamacpp").
        base: The base model it serves.
        tokenizer: The base model's transformers tokenizer (chat template, token counts), or None when the
            backend's server applies the chat template itself (remote models).
        context_window: Most tokens (prompt plus reply) one request may use; 0 when only the server knows.
        slots: How many requests it generates at once.
        token_lock: Held around every use of the tokenizer (the Rust tokenizer is not safe for concurrent calls).
    """

    name: str
    base: BaseModel
    tokenizer: Any
    context_window: int
    slots: int
    token_lock: threading.Lock

    def submit(self, job: Job) -> None:
        """Start generating `job` in the background and return at once; the job's Reply is closed when done."""
        ...

    def run_many(self, jobs: Sequence[Job]) -> None:
        """Generate every job, together where the backend can, and return when all are closed."""
        ...

    def close(self) -> None:
        """Free what the backend holds (models, servers)."""
        ...
