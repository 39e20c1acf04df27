"""ChatEngine: messages + GenerationSettings -> streamed text + ReplyStats. The one way text is generated.

Usage:
    engine = ChatEngine.load(Settings.from_env())
    reply = engine.stream([{"role": "user", "content": "Hi"}], GenerationSettings(temperature=0))
    for chunk in reply:          # text as it is produced
        print(chunk, end="")
    reply.stats                  # prompt/new tokens, time to first token, tokens/s, finish reason, backend
    reply.cancel()               # from any thread: generation stops after the current token
    engine.generate_many([(messages, settings, "my-run"), ...])   # many requests, generated together

The engine does what must mean the same everywhere: it checks messages and settings, applies the model's own
chat template, drops the oldest turns (never the system prompt) when the conversation would not fit the
context window, picks the seed and resolves the adapter. A base model without a chat template is served in
completion mode: it continues the messages' text instead of a template it never saw (an adapter trained on it
declares the template it learned, and requests with that adapter use it). A backend
(`workbench.generation.backends`) generates: llama.cpp in process for a GGUF model on the CPU (several requests
at once), transformers otherwise, a remote server for a remote model. Perplexity and token probabilities come
from the transformers model (`model_for`), loaded on first use when the backend is llama.cpp.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.backends import choose_backend, load_backend
from workbench.generation.backends.base import Backend, Extras, Job
from workbench.generation.settings import GenerationSettings, Message, ReplyStats, check_messages
from workbench.generation.streaming import Reply, collect
from workbench.registry import (
    BASE_NAME,
    CHAT_TEMPLATE_FILE,
    Adapter,
    BaseModel,
    find_adapter,
    list_adapters,
    resolve_base,
)

Request = tuple[Sequence[Message], GenerationSettings | None, str | None]  # messages, settings, adapter


def completion_text(messages: Sequence[Message]) -> str:
    """A conversation as the plain text a base model continues (completion mode): the messages' contents,
    one paragraph each."""
    return "\n\n".join(m["content"] for m in messages if m["content"])


class ChatEngine:
    """Generates chat replies from one base model, with or without a LoRA adapter per request."""

    def __init__(self, backend: Backend, settings: Settings) -> None:
        self.backend = backend
        self.settings = settings
        self.base: BaseModel = backend.base
        self.tokenizer = backend.tokenizer
        self._token_lock = backend.token_lock  # the Rust tokenizer is not safe for concurrent calls
        self._reference: Any = backend if backend.name == "transformers" else None
        self._reference_lock = threading.Lock()

    @classmethod
    def load(cls, settings: Settings | None = None, base_name: str | None = None, backend: str | None = None):
        """Load the configured base model (the embedded one by default) on the chosen backend.

        Args:
            settings: Workbench settings (WORKBENCH_* from the environment when None).
            base_name: A base model other than the configured one.
            backend: "transformers" or "llamacpp" instead of the settings' choice.
        """
        from workbench.generation.fetch import local_file

        settings = settings or Settings.from_env()
        base = local_file(resolve_base(settings, base_name))  # the embedded model from the hub, if it must be
        return cls(load_backend(choose_backend(settings, base, backend), base, settings), settings)

    @property
    def backend_name(self) -> str:
        """The backend that generates: "transformers" or "llamacpp"."""
        return self.backend.name

    @property
    def context_window(self) -> int:
        """Most tokens (prompt plus reply) one request may use."""
        return self.backend.context_window

    @property
    def slots(self) -> int:
        """How many requests the backend generates at once."""
        return self.backend.slots

    def reference(self) -> Any:
        """The transformers backend on the same base (this engine's backend when it is transformers, else
        loaded on first call): the reference for perplexity, token probabilities and teacher-forced scoring."""
        if self.base.kind == "remote":
            raise WorkbenchError(
                f"{self.base.name} is served by {self.base.source}, which sends log-probabilities only for the "
                "tokens it generates: perplexity needs the model's weights, so it is not offered for remote models."
            )
        with self._reference_lock:
            if self._reference is None:
                self._reference = load_backend("transformers", self.base, self.settings)
            return self._reference

    @property
    def loaded(self) -> Any:
        """The transformers model in memory (`LoadedModel`: model, device, dtype), loaded on first use."""
        return self.reference().loaded

    def close(self) -> None:
        """Free the backend (and the reference model)."""
        self.backend.close()
        if self._reference is not None and self._reference is not self.backend:
            self._reference.close()

    def adapters(self) -> list[Adapter]:
        """Every adapter on disk, with usable=False and a reason for those this base cannot use."""
        return list_adapters(self.settings, self.base)

    def checkpoints(self) -> list[str]:
        """Names a request can use: "base", then every usable adapter."""
        return [BASE_NAME] + [a.name for a in self.adapters() if a.usable]

    @contextlib.contextmanager
    def model_for(self, adapter: str | None = None, strength: float = 1.0) -> Iterator[Any]:
        """The transformers model with `adapter` active (None or "base": no adapter) at `strength` (its LoRA
        scale times this; the base ignores it), for direct use such as perplexity.

        The model's lock is held until the `with` block ends, so no generation or adapter switch on it
        interleaves. Raises WorkbenchError for an unknown or unusable adapter, before taking the lock.
        """
        chosen = self.resolve_adapter(adapter)
        with self.reference().model_for(chosen, strength) as model:
            yield model

    def resolve_adapter(self, name: str | None) -> Adapter | None:
        """The adapter called `name` (checked: exists, usable, trained for this base); None for "base"."""
        return None if name in (None, "", BASE_NAME) else find_adapter(self.settings, name, self.base)

    def next_token_probabilities(
        self, messages: Sequence[Message], adapter: str | None = None, *, k: int = 10, temperature: float = 1.0
    ) -> list[tuple[int, str, float]]:
        """The `k` most likely first tokens of the reply to `messages`, as (token id, text, probability).

        Probabilities are the softmax of the logits divided by `temperature` over the whole vocabulary (before
        top-k/top-p filtering), with `adapter` active; computed under the engine's lock like a generation.
        """
        if not 1 <= k <= 100:
            raise WorkbenchError(f"k must be between 1 and 100, not {k}.")
        if not temperature > 0:
            raise WorkbenchError(f"The temperature must be above 0 for probabilities, not {temperature:g}.")
        if self.base.kind == "remote":  # the server's top log-probabilities, as far as it gives them
            chosen = self.resolve_adapter(adapter)
            return self.backend.next_token_probabilities(
                check_messages(messages), chosen.name if chosen else None, k, temperature
            )
        import torch

        ids, _ = self.fit(check_messages(messages), 1, self.resolve_adapter(adapter))
        with self.model_for(adapter) as model, torch.no_grad():
            inputs = torch.tensor([ids], device=model.device)
            logits = model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).logits[0, -1].float()
            top = torch.topk(torch.softmax(logits / temperature, dim=-1), k)
        with self._token_lock:
            return [
                (int(i), self.tokenizer.decode([int(i)]), float(p))
                for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
            ]

    def template_for(self, adapter: Adapter | None = None) -> str | None:
        """The chat template a request uses: the one an adapter was trained with when it declares one (a base
        model taught to chat), else the model's own; None for a base model, which is served in completion
        mode (it continues the text)."""
        if adapter is not None and (adapter.path / CHAT_TEMPLATE_FILE).is_file():
            return (adapter.path / CHAT_TEMPLATE_FILE).read_text(encoding="utf-8")
        return getattr(self.tokenizer, "chat_template", None) or None

    def encode(self, messages: Sequence[Message], adapter: Adapter | None = None) -> list[int]:
        """Token ids of a conversation in the chat template (ending with the assistant cue); in completion mode
        the messages' text, as the model starts a text (with BOS when it adds one)."""
        template = self.template_for(adapter)
        with self._token_lock:
            if template is None:
                return list(self.tokenizer(completion_text(messages))["input_ids"])
            encoded = self.tokenizer.apply_chat_template(
                list(messages), chat_template=template, add_generation_prompt=True, tokenize=True, return_dict=True
            )
        return list(encoded["input_ids"])

    def fit(
        self, messages: Sequence[Message], max_new_tokens: int, adapter: Adapter | None = None
    ) -> tuple[list[int], int]:
        """Prompt ids that leave room for `max_new_tokens`, dropping the oldest turns if needed.

        Returns the ids and how many messages were dropped. The system prompt and the last user
        message are never dropped; if they alone do not fit, that is an error.
        """
        window = self.context_window
        if max_new_tokens >= window:
            raise WorkbenchError(
                f"Max new tokens must be below {window}, this model's context window, not {max_new_tokens}."
            )
        system = list(messages[:1]) if messages[0]["role"] == "system" else []
        turns = list(messages[len(system) :])
        ids = self.encode(system + turns, adapter)
        if len(ids) + max_new_tokens <= window:
            return ids, 0
        # Drop the oldest turns: a conversation restarts on a user turn, and fewer turns never take more tokens,
        # so a binary search over the user turns finds the longest tail that fits in O(log n) encodes (dropping
        # one turn at a time re-encoded the whole history per turn: quadratic in a long history).
        starts = [i for i, turn in enumerate(turns) if turn["role"] == "user"] or [len(turns) - 1]
        low, high = 0, len(starts) - 1  # the answer is the first start in starts[low..high] that fits
        best: list[int] | None = None
        while low <= high:
            middle = (low + high) // 2
            candidate = self.encode(system + turns[starts[middle] :], adapter)
            if len(candidate) + max_new_tokens <= window:
                best, high = candidate, middle - 1
            else:
                low = middle + 1
        if best is None:
            last = self.encode(system + turns[starts[-1] :], adapter)
            raise WorkbenchError(
                f"The message is {len(last)} tokens long; with {max_new_tokens} new tokens it does not fit "
                f"this model's context window of {window} tokens."
            )
        return best, starts[low]

    def _job(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings | None,
        adapter: str | None,
        evict: bool = True,
        *,
        prompt_ids: Sequence[int] | None = None,
        extras: Extras | None = None,
    ) -> Job:
        """Check a request and make its job (nothing starts); raises WorkbenchError with one sentence. With
        `prompt_ids` the prompt is those tokens as they are (no chat template, nothing trimmed) and `messages`
        is not used."""
        started = time.perf_counter()
        settings = settings or GenerationSettings()
        extras = extras or Extras()
        offered = getattr(self.backend, "EXTRAS", ())
        for name in extras.asked():
            if name not in offered:
                raise WorkbenchError(
                    f"{name} is offered on the llama.cpp backend, and {self.base.name} runs on {self.backend.name}."
                )
        chosen = self.resolve_adapter(adapter)
        if chosen is None and settings.adapter_strength != 1:
            # The base model has no adapter to scale: it ignores the strength, and its reply records 1, the
            # strength that applied (every entry point answers alike, the chat slider and the API included).
            settings = settings.replace(adapter_strength=1.0)
        elif chosen is not None and self.base.remote is not None:
            self.base.remote.check_strength(chosen.name, settings.adapter_strength)
        clean: list[Message] = []
        raw = prompt_ids is not None
        if prompt_ids is not None:
            prompt_ids, trimmed = self.check_ids(prompt_ids, settings.max_new_tokens), 0
        elif self.tokenizer is not None:  # a remote server applies its own template and refuses what does not fit
            clean = check_messages(messages)
            prompt_ids, trimmed = self.fit(clean, settings.max_new_tokens, chosen)
        else:
            clean, prompt_ids, trimmed = check_messages(messages), [], 0
        seed = settings.seed if settings.seed is not None else random.randrange(2**31)
        stats = ReplyStats(
            model=self.base.name,
            adapter=chosen.name if chosen else None,
            prompt_tokens=len(prompt_ids),
            trimmed_turns=trimmed,
            seed=seed,
            settings=settings.replace(seed=seed).to_dict(),
            backend=self.backend.name,
            completion=self.tokenizer is not None and (raw or self.template_for(chosen) is None),
        )
        reply = Reply(stats, settings.stop, started)
        return Job(list(prompt_ids), settings, seed, chosen, reply, clean, evict, extras)

    def check_ids(self, prompt_ids: Sequence[int], max_new_tokens: int) -> list[int]:
        """Prompt token ids checked: whole numbers of this model's vocabulary, room left for `max_new_tokens`."""
        if self.tokenizer is None:
            raise WorkbenchError(f"{self.base.name} is served by its own server, which takes messages, not token ids.")
        vocabulary = len(self.tokenizer)
        ids = list(prompt_ids)
        if not ids:
            raise WorkbenchError("The prompt is empty: send some text or token ids.")
        if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < vocabulary for i in ids):
            raise WorkbenchError(
                f"Token ids must be whole numbers from 0 to {vocabulary - 1}, this model's vocabulary."
            )
        if len(ids) + max_new_tokens > self.context_window:
            raise WorkbenchError(
                f"The prompt is {len(ids)} tokens; with {max_new_tokens} new tokens it does not fit this model's "
                f"context window of {self.context_window} tokens."
            )
        return ids

    def stream(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings | None = None,
        adapter: str | None = None,
        *,
        evict: bool = True,
        extras: Extras | None = None,
    ) -> Reply:
        """Start generating a reply; iterate the returned `Reply` for text.

        Args:
            messages: The conversation, ending with the user's message.
            settings: Sampling settings (defaults when None).
            adapter: An adapter name from `checkpoints()`; None or "base" for the base model.
            evict: Whether loading the adapter may drop another one the backend holds (False for visitors).
            extras: Log-probabilities or a JSON schema (see `Extras`; refused where the backend lacks them).

        Raises:
            WorkbenchError: Bad messages or settings, an unknown or unusable adapter, or a prompt
                that does not fit the context window. Nothing has started when this is raised.
        """
        job = self._job(messages, settings, adapter, evict, extras=extras)
        self.backend.submit(job)
        return job.reply

    def complete(
        self,
        prompt_ids: Sequence[int],
        settings: GenerationSettings | None = None,
        adapter: str | None = None,
        *,
        evict: bool = True,
        extras: Extras | None = None,
    ) -> Reply:
        """Start continuing `prompt_ids` as they are (no chat template): a plain completion, as `stream` does
        for messages. Raises WorkbenchError for ids outside the vocabulary or a prompt that does not fit."""
        job = self._job([], settings, adapter, evict, prompt_ids=prompt_ids, extras=extras)
        self.backend.submit(job)
        return job.reply

    def tokenize(self, text: str) -> list[int]:
        """Token ids of plain text as the model starts a text (with BOS when its tokenizer adds one)."""
        if self.tokenizer is None:
            raise WorkbenchError(f"{self.base.name} is served by its own server, which takes messages, not text.")
        with self._token_lock:
            return list(self.tokenizer(text)["input_ids"])

    def detokenize(self, ids: Sequence[int]) -> str:
        """The text of token ids (special tokens kept, as the model saw them)."""
        with self._token_lock:
            return self.tokenizer.decode(list(ids))

    def generate(
        self, messages: Sequence[Message], settings: GenerationSettings | None = None, adapter: str | None = None
    ) -> tuple[str, ReplyStats]:
        """Generate a whole reply; returns its text and stats."""
        return self.stream(messages, settings, adapter).result()

    def start_many(self, requests: Sequence[Request], *, evict: bool = True) -> list[Reply]:
        """Start many replies together (llama.cpp's slots, or transformers batches for greedy requests) and
        return their Replies at once, in order. Every request is checked before any starts. `evict` as in
        `stream`."""
        jobs = [self._job(messages, settings, adapter, evict) for messages, settings, adapter in requests]
        threading.Thread(target=self.backend.run_many, args=(jobs,), daemon=True, name="workbench-many").start()
        return [job.reply for job in jobs]

    def generate_many(
        self, requests: Sequence[Request], progress: Callable[[int, int], None] | None = None
    ) -> list[tuple[str, ReplyStats]]:
        """Generate many replies together; (text, stats) per request, in order.

        Greedy replies are the same as one at a time on the same backend. `progress(done, total)` is called as
        replies finish, in order. If a reply fails, the others are cancelled and its error is raised.
        """
        return collect(self.start_many(requests), progress)

    # --- what a Router also answers (workbench.generation.router), so callers take either ------------------

    def route(self, checkpoint: str | None) -> tuple[ChatEngine, str]:
        """This engine and the checkpoint (a Router picks among engines)."""
        return self, checkpoint or BASE_NAME

    def store_name(self, checkpoint: str) -> str:
        """The checkpoint's name in the store: the base model's own name for "base", else the adapter name."""
        return self.base.name if checkpoint in ("", BASE_NAME) else checkpoint

    def base_name(self, checkpoint: str) -> str:
        """The base model every checkpoint of this engine belongs to."""
        return self.base.name
