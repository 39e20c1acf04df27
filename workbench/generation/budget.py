"""Memory and cores as a budget when several base models are served at once (docs/models.md): the stated policy.

    policy = plan(settings)            # families, model memory, slots per family, which load at start
    engine_settings = policy.engine_settings(settings, name)   # what family `name`'s ChatEngine is loaded with
    policy.check_fits(base, loaded)    # one sentence naming what to change when `base` would not fit

The policy, chosen from the machine and overridable by settings:
- memory: WORKBENCH_MODEL_MEMORY_MB, else three quarters of the machine's memory (its cgroup limit or MemTotal);
  a family is estimated before it loads (`estimate`) and refused when it would not fit beside what is loaded,
  after families idle now have been unloaded to make room (the main model is never unloaded);
- slots: WORKBENCH_SLOTS (auto: from the cores) is the total, divided evenly among the local families (at least
  one each), so the KV caches of all of them are what one family's were;
- threads: one family's llama.cpp uses every usable core; several divide them evenly, so that all of them busy
  at once hold one compute thread per core (WORKBENCH_THREADS overrides, for each family): llama.cpp's compute
  threads spin at their barriers (OpenMP, one runtime per process), so a thread more than the cores stalls a
  family on another's (`threads_for`; docs/models.md has the measurements);
- which stay loaded: the main model always; the others load at start when WORKBENCH_PRELOAD says so (auto: when
  all fit half the memory), else on first use, and unload after WORKBENCH_IDLE_UNLOAD seconds without a request.

Torch-free: the estimates read file sizes and GGUF metadata only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from workbench.config import Settings, machine_memory, usable_cores
from workbench.errors import WorkbenchError
from workbench.registry import BaseModel, served_bases

MB = 1 << 20
AUTO_SHARE = 0.75  # of the machine's memory, for the models (the rest: Python, the UI, the store, training)
# Beside its weights and KV cache, a llama.cpp family holds its compute buffers and a transformers tokenizer in
# Python: about 150 MB measured for the embedded model (`bench --case two_families`: RSS with and without it).
RUNTIME = 150 * MB
KV_BYTES = 2  # llama.cpp's KV cache is float16 unless told otherwise
GGUF_TO_FLOAT32 = 7  # transformers on the CPU holds float32 weights: ~7x a 4.5-bit quantised GGUF


@dataclass(frozen=True)
class Policy:
    """How the served families share the machine.

    Attributes:
        families: The local families' names, the main one first.
        memory: Bytes the loaded models may hold together (None: unknown, nothing is refused).
        slots: llama.cpp slots per family.
        threads: llama.cpp's compute threads of each family, in `families`' order (None: llama.cpp's own choice).
        preload: The families loaded when the app starts (the main one always).
        idle: Seconds without a request before a family other than the main one unloads (0: never).
    """

    families: tuple[str, ...]
    memory: int | None
    slots: int
    preload: tuple[str, ...]
    idle: float
    threads: tuple[int | None, ...] = ()

    def engine_settings(self, settings: Settings, family: str | None = None) -> Settings:
        """The settings the engine of `family` (None: the main one) is loaded with: its share of the slots and of
        the cores (unchanged for one family)."""
        index = self.families.index(family) if family in self.families else 0
        threads = (self.threads[index] if index < len(self.threads) else None) or settings.threads
        if (settings.slots, settings.threads) == (self.slots, threads):
            return settings
        return dataclasses.replace(settings, slots=self.slots, threads=threads)

    def describe(self) -> str:
        """The policy in one line, for `models` and the logs."""
        memory = f"{self.memory / MB:,.0f} MB" if self.memory else "unlimited"
        idle = f"after {self.idle:g} s idle" if self.idle else "never"
        return (
            f"{len(self.families)} local famil{'y' if len(self.families) == 1 else 'ies'}, {self.slots} slots each"
            + (f" and {'/'.join(str(t) for t in self.threads)} threads" if any(self.threads) else "")
            + ", "
            f"model memory {memory}; loaded at start: {', '.join(self.preload)}; others unload {idle}."
        )

    def check_fits(self, base: BaseModel, need: int, loaded: dict[str, int]) -> None:
        """Raise WorkbenchError, one sentence naming what to change, when `base` (needing `need` bytes) does not fit
        beside the `loaded` families (name -> estimated bytes)."""
        used = sum(loaded.values())
        if self.memory is None or used + need <= self.memory:
            return
        beside = f" beside {', '.join(f'{n} ({b / MB:,.0f} MB)' for n, b in loaded.items())}" if loaded else ""
        raise WorkbenchError(
            f"{base.name} needs about {need / MB:,.0f} MB{beside}, more than the {self.memory / MB:,.0f} MB model "
            "memory: raise WORKBENCH_MODEL_MEMORY_MB, lower WORKBENCH_SLOTS or WORKBENCH_CONTEXT, or serve fewer "
            "models in WORKBENCH_MODEL."
        )


def _number(fields: dict, key: str) -> int:
    value = fields.get(key)
    if isinstance(value, list):  # some architectures give a value per layer
        value = max(value) if value else 0
    return int(value or 0)


def kv_bytes(path: str | Path, slots: int, context: int) -> int:
    """llama.cpp's KV cache for `slots` slots of `context` tokens on the GGUF at `path` (keys and values, every
    layer, float16)."""
    from workbench.generation.modelinfo import gguf_fields

    fields = gguf_fields(path)
    arch = fields.get("general.architecture")
    heads = _number(fields, f"{arch}.attention.head_count") or 1
    kv_heads = _number(fields, f"{arch}.attention.head_count_kv") or heads
    width = _number(fields, f"{arch}.embedding_length") // heads
    keys = _number(fields, f"{arch}.attention.key_length") or width
    values = _number(fields, f"{arch}.attention.value_length") or width
    return _number(fields, f"{arch}.block_count") * kv_heads * (keys + values) * KV_BYTES * slots * context


def _files_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) or sum(
        p.stat().st_size for p in folder.glob("*.bin")
    )


def estimate(base: BaseModel, settings: Settings, backend: str) -> int:
    """Bytes `base` holds once loaded on `backend` with `settings` (its slots and context): the weights (a GGUF is
    memory-mapped and read whole as it generates), the KV cache and the runtime beside them. 0 where nothing on
    disk says (a hub model not downloaded yet)."""
    if backend == "llamacpp":
        from workbench.generation.backends.llamacpp import context_for

        size = Path(base.source).stat().st_size
        return size + kv_bytes(base.source, settings.slots, context_for(base, settings)) + RUNTIME
    converted = settings.base_dir / base.cache_name
    if converted.is_dir() and _files_size(converted):
        return _files_size(converted) + RUNTIME
    if base.kind == "gguf":
        return Path(base.source).stat().st_size * GGUF_TO_FLOAT32 + RUNTIME
    if base.kind == "folder":
        return _files_size(Path(base.source)) + RUNTIME
    return 0


def _memory(settings: Settings) -> int | None:
    if settings.model_memory_mb:
        return settings.model_memory_mb * MB
    total = machine_memory()
    return int(total * AUTO_SHARE) if total else None


def threads_for(settings: Settings, families: int) -> tuple[int | None, ...]:
    """llama.cpp's compute threads of each of `families` local families, the main one first: WORKBENCH_THREADS for
    each where set; for one family, llama.cpp's own choice (None); for several, the usable cores divided evenly
    (the main one first for a remainder, at least one each), so that all of them busy at once hold one compute
    thread per core. More would put spinning OpenMP threads on a core another family's thread needs: measured on
    2 cores, one request to each of SmolLM2 (2 threads) and Gemma (1) at once decoded 62 tokens/s together,
    against 112 at one thread each, and libgomp stops spinning at every barrier once the process holds more OpenMP
    threads than cores, idle families' threads included (docs/models.md). The price: a lone request uses only its
    family's share (on 2 cores SmolLM2 alone at one thread made 0.6-0.75x its two-thread speed)."""
    if settings.threads or families <= 1:
        return (settings.threads or None,) * families
    share, extra = divmod(usable_cores(), families)
    return tuple(max(1, share + (i < extra)) for i in range(families))


def plan(settings: Settings, bases: Iterable[BaseModel] | None = None) -> Policy:
    """The policy for serving `bases` (the served families, `served_bases`, when None) on this machine."""
    bases = list(served_bases(settings) if bases is None else bases)
    names = tuple(b.name for b in bases)
    memory = _memory(settings)
    slots = max(1, settings.slots // max(1, len(bases)))
    preload = names[:1]
    if settings.preload == "all":
        preload = names
    elif settings.preload == "auto" and len(bases) > 1 and all(b.usable for b in bases):
        from workbench.generation.backends import choose_backend

        shared = dataclasses.replace(settings, slots=slots)
        try:
            need = sum(estimate(b, shared, choose_backend(settings, b)) for b in bases)
        except (OSError, ValueError, WorkbenchError):  # not on disk yet: the first request loads it
            need = None
        if need is not None and (memory is None or need <= memory / 2):
            preload = names
    return Policy(names, memory, slots, preload, settings.idle_unload, threads_for(settings, len(names)))
