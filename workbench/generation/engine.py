"""ChatEngine: messages + GenerationSettings -> streamed text + ReplyStats. The one way text is generated.

Usage:
    engine = ChatEngine.load(Settings.from_env())
    reply = engine.stream([{"role": "user", "content": "Hi"}], GenerationSettings(temperature=0))
    for chunk in reply:          # text as it is produced
        print(chunk, end="")
    reply.stats                  # prompt/new tokens, time to first token, tokens/s, finish reason
    reply.cancel()               # from any thread: generation stops after the current token

The model's own chat template formats the conversation; the oldest turns (never the system prompt)
are dropped when it would not fit the context window. One base model stays in memory; LoRA adapters
are loaded next to it with peft's multi-adapter support and chosen per request. Requests run one at
a time on the model (a lock), so concurrent callers never share adapter state, seeds or text.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.loading import LoadedModel, attach_adapter, load_base
from workbench.generation.settings import GenerationSettings, Message, ReplyStats, check_messages
from workbench.generation.streaming import Reply, TimedStreamer
from workbench.registry import BASE_NAME, Adapter, find_adapter, list_adapters, resolve_base

MAX_LOADED_ADAPTERS = 8  # LoRA weights are small, but a long session should not grow without bound


class ChatEngine:
    """Generates chat replies from one base model, with or without a LoRA adapter per request."""

    def __init__(self, loaded: LoadedModel, settings: Settings) -> None:
        self.loaded = loaded
        self.settings = settings
        self.base = loaded.base
        self.tokenizer = loaded.tokenizer
        self._model = loaded.model
        self._lock = threading.Lock()  # one generation (and adapter switch) at a time on the model
        self._token_lock = threading.Lock()  # the Rust tokenizer is not safe for concurrent calls
        self._adapters: OrderedDict[str, tuple[str, int]] = OrderedDict()  # name -> (peft key, mtime)
        self._keys = itertools.count()
        eos = loaded.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self._eos_ids = eos_ids

    @classmethod
    def load(cls, settings: Settings | None = None, base_name: str | None = None) -> ChatEngine:
        """Load the configured base model (the embedded one by default) and return an engine."""
        settings = settings or Settings.from_env()
        return cls(load_base(resolve_base(settings, base_name), settings), settings)

    @property
    def context_window(self) -> int:
        """Most tokens (prompt plus reply) the model accepts."""
        return self.loaded.context_window

    def adapters(self) -> list[Adapter]:
        """Every adapter on disk, with usable=False and a reason for those this base cannot use."""
        return list_adapters(self.settings, self.base)

    def checkpoints(self) -> list[str]:
        """Names a request can use: "base", then every usable adapter."""
        return [BASE_NAME] + [a.name for a in self.adapters() if a.usable]

    @contextlib.contextmanager
    def model_for(self, adapter: str | None = None) -> Iterator[Any]:
        """The model with `adapter` active (None or "base": no adapter), for direct use such as perplexity.

        The engine's lock is held until the `with` block ends, so no generation or adapter switch
        interleaves. Raises WorkbenchError for an unknown or unusable adapter, before taking the lock.
        """
        chosen = None if adapter in (None, "", BASE_NAME) else find_adapter(self.settings, adapter, self.base)
        with self._lock, self._active(chosen) as model:
            yield model

    @contextlib.contextmanager
    def _active(self, adapter: Adapter | None) -> Iterator[Any]:
        """With the lock held: the model with `adapter` active, or with every adapter off for the base."""
        model = self._select(adapter)
        if adapter is None and model is not self.loaded.model:  # a PeftModel: switch its adapters off
            with model.disable_adapter():
                yield model
        else:
            yield model

    def next_token_probabilities(
        self, messages: Sequence[Message], adapter: str | None = None, *, k: int = 10, temperature: float = 1.0
    ) -> list[tuple[int, str, float]]:
        """The `k` most likely first tokens of the reply to `messages`, as (token id, text, probability).

        Probabilities are the softmax of the logits divided by `temperature` over the whole vocabulary (before
        top-k/top-p filtering), with `adapter` active; computed under the engine's lock like a generation.
        """
        import torch

        if not 1 <= k <= 100:
            raise WorkbenchError(f"k must be between 1 and 100, not {k}.")
        if not temperature > 0:
            raise WorkbenchError(f"The temperature must be above 0 for probabilities, not {temperature:g}.")
        ids, _ = self.fit(check_messages(messages), 1)
        with self.model_for(adapter) as model, torch.no_grad():
            inputs = torch.tensor([ids], device=self.loaded.device)
            logits = model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).logits[0, -1].float()
            top = torch.topk(torch.softmax(logits / temperature, dim=-1), k)
        with self._token_lock:
            return [
                (int(i), self.tokenizer.decode([int(i)]), float(p))
                for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
            ]

    def encode(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of a conversation in the model's chat template, ending with the assistant cue."""
        with self._token_lock:
            encoded = self.tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=True, tokenize=True, return_dict=True
            )
        return list(encoded["input_ids"])

    def fit(self, messages: Sequence[Message], max_new_tokens: int) -> tuple[list[int], int]:
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
        trimmed = 0
        while True:
            ids = self.encode(system + turns)
            if len(ids) + max_new_tokens <= window:
                return ids, trimmed
            if len(turns) == 1:
                raise WorkbenchError(
                    f"The message is {len(ids)} tokens long; with {max_new_tokens} new tokens it does not fit "
                    f"this model's context window of {window} tokens."
                )
            turns, trimmed = turns[1:], trimmed + 1
            while len(turns) > 1 and turns[0]["role"] != "user":  # a conversation restarts on a user turn
                turns, trimmed = turns[1:], trimmed + 1

    def stream(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings | None = None,
        adapter: str | None = None,
    ) -> Reply:
        """Start generating a reply; iterate the returned `Reply` for text.

        Args:
            messages: The conversation, ending with the user's message.
            settings: Sampling settings (defaults when None).
            adapter: An adapter name from `checkpoints()`; None or "base" for the base model.

        Raises:
            WorkbenchError: Bad messages or settings, an unknown or unusable adapter, or a prompt
                that does not fit the context window. Nothing has started when this is raised.
        """
        started = time.perf_counter()
        settings = settings or GenerationSettings()
        clean = check_messages(messages)
        chosen = None if adapter in (None, "", BASE_NAME) else find_adapter(self.settings, adapter, self.base)
        prompt_ids, trimmed = self.fit(clean, settings.max_new_tokens)
        seed = settings.seed if settings.seed is not None else random.randrange(2**31)
        stats = ReplyStats(
            model=self.base.name,
            adapter=chosen.name if chosen else None,
            prompt_tokens=len(prompt_ids),
            trimmed_turns=trimmed,
            seed=seed,
            settings=settings.replace(seed=seed).to_dict(),
        )
        reply = Reply(stats, settings.stop, started)
        reply._streamer = TimedStreamer(self.tokenizer, reply)
        reply._thread = threading.Thread(
            target=self._generate, args=(reply, prompt_ids, settings, seed, chosen), daemon=True
        )
        reply._thread.start()
        return reply

    def generate(
        self, messages: Sequence[Message], settings: GenerationSettings | None = None, adapter: str | None = None
    ) -> tuple[str, ReplyStats]:
        """Generate a whole reply; returns its text and stats."""
        return self.stream(messages, settings, adapter).result()

    def _generate(
        self, reply: Reply, prompt_ids: list[int], settings: GenerationSettings, seed: int, adapter: Adapter | None
    ) -> None:
        import torch

        try:
            with self._lock:
                reply.generation_started = time.perf_counter()
                reply.stats.queued_s = reply.generation_started - reply._started
                if reply.cancelled.is_set():
                    return
                inputs = torch.tensor([prompt_ids], device=self.loaded.device)
                kwargs = self._generate_kwargs(settings, reply)
                with self._active(adapter) as model:
                    torch.manual_seed(seed)
                    output = model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs), **kwargs)
                reply.output_ids = output[0, len(prompt_ids) :].tolist()
        except Exception as exc:  # reported to the consumer by Reply.__iter__
            reply.error = exc
        finally:
            self._finish(reply, settings)
            reply._streamer.end()

    def _generate_kwargs(self, settings: GenerationSettings, reply: Reply) -> dict[str, Any]:
        from transformers import StoppingCriteria, StoppingCriteriaList

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                import torch

                return torch.full((input_ids.shape[0],), reply.cancelled.is_set(), dtype=torch.bool)

        config = copy.deepcopy(self.loaded.model.generation_config)
        sampling = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        if not settings.greedy:
            sampling = {
                "do_sample": True,
                "temperature": settings.temperature,
                "top_p": settings.top_p,
                "top_k": settings.top_k or None,
            }
        config.update(
            max_new_tokens=settings.max_new_tokens,
            repetition_penalty=settings.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id,
            stop_strings=list(settings.stop) or None,
            **sampling,
        )
        return {
            "generation_config": config,
            "streamer": reply._streamer,
            "stopping_criteria": StoppingCriteriaList([Cancelled()]),
            "tokenizer": self.tokenizer,
        }

    def _finish(self, reply: Reply, settings: GenerationSettings) -> None:
        stats, now = reply.stats, time.perf_counter()
        stats.new_tokens = len(reply.output_ids)
        stats.total_s = now - reply._started
        if reply.first_token_at is not None:
            stats.ttft_s = reply.first_token_at - reply._started
        if reply.generation_started is not None and stats.new_tokens:
            stats.tokens_per_s = stats.new_tokens / max(now - reply.generation_started, 1e-9)
        text = self.tokenizer.decode(reply.output_ids, skip_special_tokens=True)
        if any(stop in text for stop in settings.stop):
            stats.finish_reason = "stop"
        elif reply.output_ids and reply.output_ids[-1] in self._eos_ids:
            stats.finish_reason = "eos"
        elif reply.cancelled.is_set() and stats.new_tokens < settings.max_new_tokens:
            stats.finish_reason = "cancelled"
        else:
            stats.finish_reason = "length"

    def _select(self, adapter: Adapter | None) -> Any:
        """Make `adapter` the active one (loading it if new or changed on disk); return the model to call."""
        if adapter is None:
            return self._model
        mtime = (adapter.path / "adapter_model.safetensors").stat().st_mtime_ns
        known = self._adapters.get(adapter.name)
        if known and known[1] != mtime:  # retrained or resumed since it was loaded
            self._model.delete_adapter(known[0])
            del self._adapters[adapter.name]
            known = None
        if known is None:
            if len(self._adapters) >= MAX_LOADED_ADAPTERS:
                _, (old_key, _) = self._adapters.popitem(last=False)
                self._model.delete_adapter(old_key)
            key = f"adapter_{next(self._keys)}"
            self._model = attach_adapter(self._model, adapter, key)
            self._adapters[adapter.name] = (key, mtime)
        self._adapters.move_to_end(adapter.name)
        self._model.set_adapter(self._adapters[adapter.name][0])
        return self._model
