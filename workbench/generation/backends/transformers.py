"""The transformers backend: `model.generate` on any hub, folder or converted GGUF model, on GPUs or the CPU.

Importing this module imports torch and transformers; the engine imports it only when this backend is chosen.
It is the reference for perplexity, token probabilities and training, and the backend on a GPU. One base
model stays in memory; LoRA adapters are loaded next to it with peft's multi-adapter support and chosen per
request. Generations run one at a time on the model (a lock), so concurrent callers never share adapter
state, seeds or text. `run_many` batches greedy jobs with left padding (peft's mixed-adapter batches when
their adapters differ); sampled jobs keep their own seed, so they run one at a time here.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextStreamer

from workbench.config import Settings
from workbench.generation.backends.base import Job
from workbench.generation.loading import LoadedModel, attach_adapter, load_base
from workbench.generation.streaming import Reply, finish_reason
from workbench.registry import Adapter, BaseModel

MAX_LOADED_ADAPTERS = 8  # LoRA weights are small, but a long session should not grow without bound
BATCH_SIZE = 8  # greedy jobs per batched generate; measured 5.7x the tokens/s of one prompt on 2 CPU cores
BASE_ROW = "__base__"  # peft's name for "no adapter" in a mixed-adapter batch


class TransformersBackend:
    """Generates with transformers' `generate` on one base model, with or without a LoRA adapter per request."""

    name = "transformers"
    slots = 1

    def __init__(self, loaded: LoadedModel, settings: Settings) -> None:
        self.loaded = loaded
        self.settings = settings
        self.base: BaseModel = loaded.base
        self.tokenizer = loaded.tokenizer
        self.token_lock = threading.Lock()
        self._model = loaded.model
        self._lock = threading.Lock()  # one generation (and adapter switch) at a time on the model
        self._adapters: OrderedDict[str, tuple[str, int]] = OrderedDict()  # name -> (peft key, mtime)
        self._keys = itertools.count()
        eos = loaded.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_ids = eos_ids

    @classmethod
    def load(cls, base: BaseModel, settings: Settings) -> TransformersBackend:
        """Load `base` (device and dtype from `settings`)."""
        return cls(load_base(base, settings), settings)

    @property
    def context_window(self) -> int:
        return self.loaded.context_window

    def close(self) -> None:
        self._adapters.clear()

    # --- the model with an adapter active ------------------------------------------------------------------

    @contextlib.contextmanager
    def model_for(self, adapter: Adapter | None, strength: float = 1.0) -> Iterator[Any]:
        """The model with `adapter` active (None: no adapter) at `strength`, holding the lock until the block
        ends."""
        with self._lock, self._active(adapter, strength) as model:
            yield model

    @contextlib.contextmanager
    def _active(self, adapter: Adapter | None, strength: float = 1.0) -> Iterator[Any]:
        """With the lock held: the model with `adapter` active at `strength`, or with every adapter off for the
        base (which ignores the strength)."""
        model = self._select(adapter)
        if adapter is None and model is not self.loaded.model:  # a PeftModel: switch its adapters off
            with model.disable_adapter():
                yield model
        else:
            with _scaled(model if adapter is not None else None, strength):
                yield model

    def _key(self, adapter: Adapter) -> str:
        """The adapter's peft key, loading it if new or changed on disk (with the lock held)."""
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
        return self._adapters[adapter.name][0]

    def _select(self, adapter: Adapter | None) -> Any:
        """Make `adapter` the active one; return the model to call."""
        if adapter is None:
            return self._model
        key = self._key(adapter)  # may wrap the model in a PeftModel: look the model up after
        self._model.set_adapter(key)
        return self._model

    # --- one job at a time ---------------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        threading.Thread(target=self._generate, args=(job,), daemon=True, name="workbench-generate").start()

    def _generate(self, job: Job) -> None:
        reply, output_ids, error = job.reply, [], None
        streamer = _ReplyStreamer(self.tokenizer, reply)
        try:
            with self._lock:
                reply.begin()
                if not reply.cancelled.is_set():
                    inputs = torch.tensor([job.prompt_ids], device=self.loaded.device)
                    # Streamed: the Reply sees the text word by word and its stop filter ends the row (`Stopped`), so
                    # transformers' own stop strings, which walk the whole vocabulary for each new set under this
                    # lock, are not needed here.
                    kwargs = self._generate_kwargs(job.settings, [reply], stop_strings=False)
                    with self._active(job.adapter, job.settings.adapter_strength) as model:
                        torch.manual_seed(job.seed)
                        output = model.generate(
                            input_ids=inputs, attention_mask=torch.ones_like(inputs), streamer=streamer, **kwargs
                        )
                    output_ids = output[0, len(job.prompt_ids) :].tolist()
        except Exception as exc:  # reported to the consumer by Reply.__iter__
            error = exc
        finally:
            streamer.end()
            ended_on_eos = bool(output_ids) and output_ids[-1] in self.eos_ids
            reply.finish_stats(
                len(output_ids), finish_reason(reply, len(output_ids), job.settings.max_new_tokens, ended_on_eos)
            )
            reply.close(error)

    def _generate_kwargs(self, settings: Any, replies: Sequence[Reply], stop_strings: bool = True) -> dict[str, Any]:
        class Stopped(StoppingCriteria):
            """Ends each row whose reply was cancelled or showed a stop string (checked after every token)."""

            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.tensor([r.should_stop() for r in replies], dtype=torch.bool, device=input_ids.device)

        config = copy.deepcopy(self.loaded.model.generation_config)
        sampling = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None, "min_p": None}
        if not settings.greedy:
            sampling = {
                "do_sample": True,
                "temperature": settings.temperature,
                "top_p": settings.top_p,
                "top_k": settings.top_k or None,
                "min_p": settings.min_p or None,
            }
        config.update(
            max_new_tokens=settings.max_new_tokens,
            repetition_penalty=settings.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id,
            stop_strings=(list(settings.stop) or None) if stop_strings else None,
            **sampling,
        )
        return {
            "generation_config": config,
            "stopping_criteria": StoppingCriteriaList([Stopped()]),
            "tokenizer": self.tokenizer,
        }

    # --- many jobs -----------------------------------------------------------------------------------------

    def run_many(self, jobs: Sequence[Job]) -> None:
        """Greedy jobs with the same settings go in left-padded batches; the rest one at a time, in order."""
        groups: dict[Any, list[Job]] = {}
        for job in jobs:
            key = job.settings.replace(seed=None) if job.settings.greedy else ("alone", id(job))
            groups.setdefault(key, []).append(job)
        for group in groups.values():
            if len(group) == 1:
                self._generate(group[0])
                continue
            for at in range(0, len(group), BATCH_SIZE):
                self._generate_batch(group[at : at + BATCH_SIZE])

    def _generate_batch(self, jobs: Sequence[Job]) -> None:
        replies = [job.reply for job in jobs]
        outputs: list[list[int]] = [[] for _ in jobs]
        error = None
        try:
            with self._lock:
                for reply in replies:
                    reply.begin()
                width = max(len(job.prompt_ids) for job in jobs)
                pad = self.tokenizer.pad_token_id
                ids = [[pad] * (width - len(j.prompt_ids)) + j.prompt_ids for j in jobs]
                mask = [[0] * (width - len(j.prompt_ids)) + [1] * len(j.prompt_ids) for j in jobs]
                kwargs = self._generate_kwargs(jobs[0].settings, replies)
                adapters = {job.adapter.name: job.adapter for job in jobs if job.adapter is not None}
                if adapters:
                    keys = {name: self._key(adapter) for name, adapter in adapters.items()}
                    kwargs["adapter_names"] = [keys[j.adapter.name] if j.adapter else BASE_ROW for j in jobs]
                inputs = torch.tensor(ids, device=self.loaded.device)
                # one strength for the batch (jobs are grouped by settings); base rows have no adapter to scale
                with _scaled(self._model if adapters else None, jobs[0].settings.adapter_strength):
                    output = self._model.generate(
                        input_ids=inputs, attention_mask=torch.tensor(mask, device=self.loaded.device), **kwargs
                    )
                outputs = [row[width:].tolist() for row in output]
        except Exception as exc:
            error = exc
        for job, row in zip(jobs, outputs, strict=True):
            self._deliver(job, row, error)

    def _deliver(self, job: Job, row: list[int], error: BaseException | None) -> None:
        """Hand one batch row to its reply: its own tokens only (a finished row is padded to the batch's end)."""
        reply = job.reply
        end = next((i for i, token in enumerate(row) if token in self.eos_ids), None)
        tokens = row if end is None else row[: end + 1]
        reply.count_tokens(len(tokens))
        with self.token_lock:
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        reply.push(text)
        ended_on_eos = end is not None
        if reply.stop_hit and end is not None:  # the row ended on its stop string; what follows is padding
            tokens, ended_on_eos = row[:end], False
        reply.finish_stats(len(tokens), finish_reason(reply, len(tokens), job.settings.max_new_tokens, ended_on_eos))
        reply.close(error)


@contextlib.contextmanager
def _scaled(model: Any, strength: float) -> Iterator[None]:
    """Every LoRA layer's scaling times `strength` inside the block (None or strength 1: nothing changes).

    peft's own `rescale_adapter_scale` does it and restores the scalings after; it changes the model for every
    caller, so it runs only with the backend's lock held (as every generation and `model_for` do here).
    """
    if model is None or strength == 1:
        yield
        return
    from peft.helpers import rescale_adapter_scale

    with rescale_adapter_scale(model, float(strength)):
        yield


class _ReplyStreamer(TextStreamer):
    """transformers' TextStreamer writing into a Reply: it counts each new token and pushes text once a word is
    complete. Its `end` is idempotent, since the backend also ends the stream after a failure."""

    def __init__(self, tokenizer: Any, reply: Reply) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.reply = reply
        self.ended = False

    def put(self, value: Any) -> None:
        if not self.next_tokens_are_prompt:
            self.reply.count_tokens(value.numel())
        super().put(value)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.reply.push(text)

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            super().end()
