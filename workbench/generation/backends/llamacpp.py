"""The llama.cpp backend: a GGUF base model served in process by llama.cpp (the `xllamacpp` wheel).

llama.cpp's server runs inside this process with several slots: requests submitted together are decoded
together (continuous batching), each with its own sampling settings, seed, cancel and LoRA adapter. The
engine sends prompt token ids made with the same tokenizer and chat template as the transformers backend,
so both backends see exactly the same prompt; sampling is set up to mean the same as transformers'
(repetition penalty over the whole context, then temperature, top-k, top-p, min-p).

LoRA adapters trained by Workbench are converted to llama.cpp's GGUF LoRA format beside the adapter
(`workbench.generation.lora_gguf`) the first time they are asked for. llama.cpp loads adapters when its
server starts and chooses among them per request by scale, so switching between loaded adapters costs
nothing; asking for one that is not loaded yet starts a new server with it (the base file is memory-mapped,
so that takes well under a second for the embedded model) while requests on the old one finish. The adapter
strength is that per-request scale (no reload): 0 leaves the adapter out, as for the base model.

The server's own HTTP listener is bound to loopback and given a random API key, so nothing outside this
process can use it; requests go through `handle_completions` in process.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.config import Settings, cpu_quota, usable_cores
from workbench.errors import WorkbenchError
from workbench.generation.backends.base import Job
from workbench.generation.loading import load_tokenizer
from workbench.generation.modelinfo import gguf_context_length
from workbench.generation.settings import GenerationSettings
from workbench.generation.streaming import Reply, finish_reason
from workbench.registry import Adapter, BaseModel

MAX_LOADED_ADAPTERS = 8  # adapters one server holds; the least recently used drops out when a new one comes
DEFAULT_CONTEXT = 4096  # tokens per slot unless WORKBENCH_CONTEXT says otherwise (each slot has its own KV cache)
# transformers applies the repetition penalty to the logits, then temperature, top-k and top-p; llama.cpp's
# default chain puts temperature last and adds min-p 0.05, which would make the same settings mean another thing
# (transformers' min-p comes after top-p; min-p 0 keeps every token).
SAMPLERS = ["penalties", "temperature", "top_k", "top_p", "min_p"]


def _xllamacpp() -> Any:
    try:
        import xllamacpp
    except ImportError:
        raise WorkbenchError(
            "The llama.cpp backend needs the xllamacpp package: run `pip install xllamacpp`, "
            "or set WORKBENCH_BACKEND=transformers."
        ) from None
    return xllamacpp


def context_for(base: BaseModel, settings: Settings) -> int:
    """Tokens per slot: WORKBENCH_CONTEXT, else the model's trained context, at most DEFAULT_CONTEXT."""
    return settings.context or min(gguf_context_length(base.source) or DEFAULT_CONTEXT, DEFAULT_CONTEXT)


def compute_threads(settings: Settings) -> int | None:
    """llama.cpp's compute threads: WORKBENCH_THREADS, else the usable cores where a CPU quota allows fewer than
    the machine shows (llama.cpp counts the cores it sees, and twice the threads a quota allows run far slower),
    else None for llama.cpp's own choice."""
    if settings.threads:
        return settings.threads
    quota = cpu_quota()
    return usable_cores() if quota is not None and quota < (os.cpu_count() or quota) else None


def server_params(base: BaseModel, settings: Settings, slots: int, context: int) -> Any:
    """llama.cpp's server parameters for `base` with `slots` slots of `context` tokens (also the benchmark's
    bare llama.cpp, so that both run alike)."""
    params = _xllamacpp().CommonParams()
    params.model.path = base.source
    params.n_parallel = slots
    params.n_ctx = context * slots
    params.verbosity = -1  # llama.cpp's own progress lines would flood the app's log
    threads = compute_threads(settings)
    if threads:
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    return params


def _ready(server: Any) -> Any:
    """Wait until a new server's generation loop runs, with one tiny request through it.

    xllamacpp's constructor returns before the loop has started, and a server destroyed in that gap waits
    for its loop forever (its stop flag is set before the loop sets it running): a command that failed right
    after loading the model hung at exit about one time in six.
    """
    server.handle_completions({"prompt": [0], "n_predict": 1, "id_slot": 0, "cache_prompt": False}, lambda _: False)
    return server


def request_body(job: Job, context: int) -> dict[str, Any]:
    """The completion request for a job: prompt token ids and settings in llama.cpp's terms (`context` is
    the slot's size, over which the repetition penalty looks back, as transformers' does over everything)."""
    s: GenerationSettings = job.settings
    body = {
        "prompt": job.prompt_ids,
        "max_tokens": s.max_new_tokens,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "top_k": s.top_k,
        "min_p": s.min_p,
        "repeat_penalty": s.repetition_penalty,
        "repeat_last_n": context,
        "seed": job.seed,
        "samplers": SAMPLERS,
        "stream": True,
    }
    if job.extras.logprobs is not None:  # each token's log-probability before sampling, and the k most likely
        body["logprobs"] = max(job.extras.logprobs, 1)
    if job.extras.json_schema is not None:  # llama.cpp turns the schema into a grammar that constrains sampling
        body["json_schema"] = job.extras.json_schema
    return body


def _shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


@dataclass
class _Slot:
    """What one llama.cpp slot holds in its KV cache: the prompt it last processed, under which adapter."""

    key: Any = None  # (adapter key, strength), or None for the base model
    prompt: list[int] = field(default_factory=list)
    busy: bool = False
    used: float = 0.0


class _Loaded:
    """One llama.cpp server, the adapter files it holds (in its LoRA order) and its slots.

    Workbench assigns the slots itself. llama.cpp reuses a slot's cached prompt prefix for the next request
    without checking which adapter computed it (llama.cpp issue #26207), so a request may reuse a slot's cache
    only when the slot last ran the same adapter; otherwise it asks for a fresh prompt evaluation. Among the
    free slots, the one whose cached prompt shares the longest prefix with the request wins (a chat's next turn
    finds its conversation), then the least recently used.
    """

    def __init__(self, server: Any, loras: list[tuple[str, int]], slots: int) -> None:
        self.server = server
        self.loras = loras  # (gguf path, mtime_ns)
        self.slots = [_Slot() for _ in range(slots)]
        self._free = threading.Condition()

    def lora_field(self, key: tuple[str, int] | None, strength: float = 1.0) -> list[dict[str, Any]]:
        # Every adapter gets a scale: llama.cpp keeps the last scale of one a request leaves out (#28674). Its
        # server applies only adapters with a scale other than 0, so strength 0 computes the base model alone.
        return [{"id": i, "scale": strength if known == key else 0.0} for i, known in enumerate(self.loras)]

    def acquire(self, key: Any, prompt: list[int], cancelled: threading.Event) -> tuple[int, bool]:
        """A free slot for this request and whether its cache may be reused; (-1, False) if cancelled first."""
        with self._free:
            while not (free := [i for i, slot in enumerate(self.slots) if not slot.busy]):
                if cancelled.is_set():
                    return -1, False
                # release() wakes one waiter at once; the timeout only bounds how late a cancel is noticed
                # (each wake of every waiting request takes the GIL from the requests that generate).
                self._free.wait(0.25)

            def fit(i: int) -> tuple[int, float]:
                slot = self.slots[i]
                shared = _shared_prefix(slot.prompt, prompt)
                return (shared if slot.key == key else -1, -slot.used)

            chosen = max(free, key=fit)
            slot = self.slots[chosen]
            reuse = slot.key == key
            slot.key, slot.prompt, slot.busy, slot.used = key, list(prompt), True, time.monotonic()
            return chosen, reuse

    def release(self, index: int) -> None:
        with self._free:
            self.slots[index].busy = False
            self._free.notify()

    def complete(
        self,
        body: dict[str, Any],
        key: tuple[str, int] | None,
        cancelled: threading.Event,
        on_chunk: Callable,
        strength: float = 1.0,
    ) -> bool:
        """Run one completion request on a slot of its own, the adapter `key` at `strength`; False if it was
        cancelled while waiting for one. The part of the prompt the slot already holds under the same adapter and
        strength is not evaluated again (measured: the same replies as a full evaluation)."""
        index, reuse = self.acquire(None if key is None else (key, strength), body["prompt"], cancelled)
        if index < 0:
            return False
        try:
            body = {**body, "id_slot": index, "cache_prompt": reuse, "lora": self.lora_field(key, strength)}
            self.server.handle_completions(body, on_chunk)
        finally:
            self.release(index)
        return True


class LlamaCppBackend:
    """Generates with llama.cpp in process on a GGUF base model, several requests at once."""

    name = "llamacpp"
    EXTRAS = ("logprobs", "json_schema")  # what `Extras` it takes

    def __init__(self, base: BaseModel, settings: Settings, tokenizer: Any, context_window: int) -> None:
        self.base = base
        self.settings = settings
        self.tokenizer = tokenizer
        self.token_lock = threading.Lock()
        self.context_window = context_window
        self.slots = settings.slots
        self._secret = secrets.token_urlsafe(24)
        self._lock = threading.Lock()  # guards _current and server restarts
        self._used: dict[tuple[str, int], float] = {}  # adapter file -> when a request last asked for it
        self._current = self._start([])
        self.eos_ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()

    @classmethod
    def load(cls, base: BaseModel, settings: Settings) -> LlamaCppBackend:
        """Start llama.cpp on `base`, which must be a GGUF file."""
        if base.kind != "gguf":
            raise WorkbenchError(
                f"The llama.cpp backend runs GGUF models, and {base.name!r} is a {base.kind} model: "
                "set WORKBENCH_BACKEND=transformers, or point WORKBENCH_MODEL at a .gguf file."
            )
        _xllamacpp()
        return cls(base, settings, load_tokenizer(base, settings), context_for(base, settings))

    def _start(self, loras: list[tuple[str, int]]) -> _Loaded:
        xl = _xllamacpp()
        params = server_params(self.base, self.settings, self.slots, self.context_window)
        params.api_keys = [self._secret]
        # llama.cpp also keeps slots' prompt states in RAM and restores them into any slot by prompt prefix,
        # whichever adapter computed them; our slot assignment (see _Loaded) is the only prompt cache.
        params.cache_ram_mib = 0
        params.cache_idle_slots = False
        if loras:
            params.lora_adapters = [xl.CommonAdapterLoraInfo(path, 0.0) for path, _ in loras]
            params.lora_init_without_apply = True
        try:
            return _Loaded(_ready(xl.Server(params)), loras, self.slots)
        except Exception as exc:  # llama.cpp reports a bad model or adapter file as an exception
            raise WorkbenchError(f"llama.cpp could not load {self.base.name!r}: {exc}") from None

    def _server_for(self, adapter: Adapter | None, evict: bool = True) -> tuple[_Loaded, tuple[str, int] | None]:
        """The server to send a request to, and the adapter's key in it (a new server if it is not loaded; with
        `evict` False only while every adapter the running server holds still fits beside it)."""
        if adapter is None:
            with self._lock:
                return self._current, None
        from workbench.generation.lora_gguf import cached_gguf

        path = cached_gguf(adapter.path, Path(self.base.source))
        key = (str(path), path.stat().st_mtime_ns)
        with self._lock:
            current = self._current
            self._used[key] = time.monotonic()
            if key not in current.loras:
                # A re-converted file replaces its old self, a deleted one drops out, and the least recently
                # used adapters make room.
                others = [k for k in current.loras if k[0] != key[0] and _unchanged(k)]
                keep = sorted(others, key=lambda k: self._used.get(k, 0.0))[-(MAX_LOADED_ADAPTERS - 1) :]
                if not evict and len(keep) < len(others):
                    raise WorkbenchError(
                        f"Adapter {adapter.name!r} is not loaded now and the server holds as many as it can: "
                        "choose the base model or another adapter."
                    )
                try:
                    self._current = current = self._start([*keep, key])
                except WorkbenchError:  # the running server, without this adapter, stays in use
                    raise WorkbenchError(
                        f"llama.cpp could not load adapter {adapter.name!r}; its converted file is {path}."
                    ) from None
            return current, key

    def busy(self) -> int:
        """Slots generating now (on the current server): what a stopped or abandoned request must give back."""
        with self._lock:
            current = self._current
        with current._free:
            return sum(slot.busy for slot in current.slots)

    def close(self) -> None:
        with self._lock:
            self._current = None  # type: ignore[assignment]  # the server stops when its last request ends

    # --- generation ----------------------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        threading.Thread(target=self._generate, args=(job,), daemon=True, name="workbench-llamacpp").start()

    def run_many(self, jobs: Sequence[Job]) -> None:
        """Every job at once, up to one per slot; llama.cpp decodes the running ones in one batch."""
        with ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="workbench-llamacpp") as pool:
            list(pool.map(self._generate, jobs))

    def _generate(self, job: Job) -> None:
        reply: Reply = job.reply
        state: dict[str, Any] = {"chunks": 0, "finish": None, "tokens": None, "error": None}

        def on_chunk(chunk: Any) -> bool:
            if not isinstance(chunk, dict) or "choices" not in chunk:
                state["error"] = _error_text(chunk)
                return True
            choice = chunk["choices"][0]
            if choice.get("finish_reason"):
                state["finish"] = choice["finish_reason"]
                state["tokens"] = (chunk.get("usage") or {}).get("completion_tokens")
                return False
            state["chunks"] += 1
            reply.count_tokens(1)
            if job.extras.logprobs is not None:
                reply.logprobs.extend(_logprobs(choice, job.extras.logprobs))
            return reply.push(choice.get("text") or "")

        error: BaseException | None = None
        try:
            loaded, key = self._server_for(job.adapter, job.evict)
            reply.begin()
            strength = job.settings.adapter_strength
            loaded.complete(request_body(job, self.context_window), key, reply.cancelled, on_chunk, strength)
            if state["error"]:
                error = WorkbenchError(state["error"])
        except Exception as exc:  # reported to the consumer by Reply.__iter__
            error = exc
        finally:
            new_tokens = state["tokens"] if state["tokens"] is not None else state["chunks"]
            # llama.cpp ends with finish_reason "stop" on an end-of-generation token (we pass it no stop words)
            ended_on_eos = state["finish"] == "stop"
            reply.finish_stats(new_tokens, finish_reason(reply, new_tokens, job.settings.max_new_tokens, ended_on_eos))
            reply.close(error)

    def greedy_tokens(
        self, prompt_ids: list[int], max_new_tokens: int, adapter: Adapter | None = None, strength: float = 1.0
    ) -> list[tuple[int, float]]:
        """The greedy continuation of `prompt_ids` as (token id, log-probability) pairs, for comparing backends
        (`adapter` at `strength`)."""
        loaded, key = self._server_for(adapter)
        body = {"prompt": prompt_ids, "max_tokens": max_new_tokens, "temperature": 0.0, "logprobs": 1, "stream": True}
        out: list[tuple[int, float]] = []
        failed: list[str] = []

        def on_chunk(chunk: Any) -> bool:
            if not isinstance(chunk, dict) or "choices" not in chunk:
                failed.append(_error_text(chunk))
                return True
            content = (chunk["choices"][0].get("logprobs") or {}).get("content") or []
            out.extend((int(t["id"]), float(t["logprob"])) for t in content)
            return False

        loaded.complete(body, key, threading.Event(), on_chunk, strength)
        if failed:
            raise WorkbenchError(f"llama.cpp failed: {failed[0]}")
        return out


def _logprobs(choice: dict[str, Any], k: int) -> list[dict[str, Any]]:
    """A chunk's tokens as {"token", "logprob", "top_logprobs": [{"token", "logprob"}...]} (k alternatives)."""
    content = (choice.get("logprobs") or {}).get("content") or []
    return [
        {
            "token": t.get("token", ""),
            "logprob": float(t.get("logprob", 0.0)),
            "top_logprobs": [{"token": a.get("token", ""), "logprob": float(a["logprob"])} for a in t["top_logprobs"]][
                :k
            ]
            if k
            else [],
        }
        for t in content
    ]


def _unchanged(key: tuple[str, int]) -> bool:
    """Whether a loaded adapter file is still on disk as it was loaded."""
    try:
        return Path(key[0]).stat().st_mtime_ns == key[1]
    except OSError:
        return False


def _error_text(chunk: Any) -> str:
    """One sentence from a llama.cpp error object."""
    if isinstance(chunk, dict):
        inner = chunk.get("error", chunk)
        if isinstance(inner, dict):
            return str(inner.get("message") or inner)
        return str(inner)
    return str(chunk)
