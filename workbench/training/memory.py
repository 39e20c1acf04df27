"""How much memory a fine-tuning run needs, before it starts, and whether the machine has it.

    shape = model_shape(base, settings)                    # from config.json or the GGUF's metadata; no weights
    need = estimate(shape, config, device="cpu")            # MemoryEstimate: weights, adapter, activations, loss...
    print(need.summary(available_bytes("cpu")))
    check_fits(need, available_bytes("cpu"))               # WorkbenchError, one sentence, when it cannot fit
    use_jemalloc(settings.train_allocator)                  # a training program's entry: re-executes it once
    use_huge_pages()                                        # a training process, before torch is imported
    return_freed_memory()                                   # a training process: freed tensors leave its RSS

The estimate is arithmetic on the model's shape (parameters, hidden size, layers, heads, vocabulary), the batch
(rows x max length; DPO scores a chosen and a rejected reply per row), LoRA's size and the loss head the run will
use, with the per-token activation constants measured on SmolLM2-135M with `workbench bench --case train_memory`
(docs/speed.md). It aims at the right size (within about a third), not the last megabyte: enough to refuse a run
that cannot fit before it loads anything, and to show what a longer max length or a bigger batch costs.

Available memory is the machine's MemAvailable (psutil or /proc/meminfo), capped by the container's cgroup limit
(a Space sees the host's memory in /proc/meminfo, not its own 16 GB); on a GPU, the device's free memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.registry import BaseModel
from workbench.training.config import JobConfig

GB = 1e9
RUNTIME_BYTES = 0.5e9  # Python, torch, transformers, TRL, the tokenizer and the data (0.4 GB measured before a load)
CHUNK_BYTES = 64 * 1024**2  # chunked_head.CHUNK_BYTES (kept here so this module stays torch-free)
# Activations a training step keeps per token and layer, in units of the hidden size / intermediate size (fp32
# or bf16 values): norms, q/k/v/o, rotary copies and residuals; gate, up, the activation and its product; LoRA's
# dropout copies of each adapted layer's input. Calibrated on SmolLM2-135M (docs/speed.md).
PER_HIDDEN, PER_INTERMEDIATE, PER_LORA_INPUT = 14, 5, 1
TRL_TILE = (4096, 32768)  # TRL's fused head on the CPU: tokens x vocabulary per tile, about six tiles live


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know about a causal LM (a Llama-like decoder)."""

    vocab: int
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    tied: bool = True

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def params(self) -> int:
        kv = self.kv_heads * self.head_dim
        per_layer = 2 * self.hidden * self.hidden + 2 * self.hidden * kv + 3 * self.hidden * self.intermediate
        embed = self.vocab * self.hidden * (1 if self.tied else 2)
        return embed + self.layers * (per_layer + 2 * self.hidden) + self.hidden

    def lora_params(self, rank: int) -> int:
        """LoRA on every linear layer but the head (A: in x r, B: r x out)."""
        kv = self.kv_heads * self.head_dim
        h, i = self.hidden, self.intermediate
        shapes = [(h, h), (h, kv), (h, kv), (h, h), (h, i), (h, i), (i, h)]
        return self.layers * sum(rank * (a + b) for a, b in shapes)


def shape_from_config(config: dict[str, Any]) -> ModelShape:
    """A ModelShape from a transformers config.json dict (a text model or the text part of one)."""
    text = config.get("text_config") or config
    heads = text["num_attention_heads"]
    return ModelShape(
        vocab=text["vocab_size"],
        hidden=text["hidden_size"],
        intermediate=text.get("intermediate_size") or 4 * text["hidden_size"],
        layers=text["num_hidden_layers"],
        heads=heads,
        kv_heads=text.get("num_key_value_heads") or heads,
        tied=bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", True))),
    )


def _gguf_shape(path: Path) -> ModelShape:
    import gguf

    reader = gguf.GGUFReader(str(path))

    def field(name: str) -> Any:
        arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
        f = reader.fields.get(f"{arch}.{name}")
        return None if f is None else int(f.parts[-1][0])

    tokens = reader.fields["tokenizer.ggml.tokens"]
    heads = field("attention.head_count")
    return ModelShape(
        vocab=field("vocab_size") or len(tokens.data),
        hidden=field("embedding_length"),
        intermediate=field("feed_forward_length"),
        layers=field("block_count"),
        heads=heads,
        kv_heads=field("attention.head_count_kv") or heads,
        tied="output.weight" not in {t.name for t in reader.tensors},
    )


def model_shape(base: BaseModel, settings: Settings) -> ModelShape | None:
    """The base model's shape from its config.json (converted folder, local folder or the hub cache) or, for a GGUF
    not converted yet, its metadata; None when none can be read without a download."""
    from workbench.generation.fetch import local_file

    candidates = [settings.base_dir / base.cache_name / "config.json"]
    if base.kind == "folder":
        candidates.append(Path(base.source) / "config.json")
    elif base.kind == "hub":
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(base.source, "config.json")
        if isinstance(cached, str):
            candidates.append(Path(cached))
    for path in candidates:
        if path.is_file():
            return shape_from_config(json.loads(path.read_text(encoding="utf-8")))
    if base.kind == "gguf":
        return _gguf_shape(Path(local_file(base).source))
    return None


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs at its peak, by part.

    Attributes:
        weights: The frozen base weights.
        adapter: LoRA's weights, gradients and AdamW's two moments (fp32).
        activations: What the forward pass keeps for the backward pass, for one batch.
        loss: The LM head and the loss's working memory (chunked head: a few chunks; TRL's CPU head: its tiles).
        runtime: Python, torch and the libraries, the tokenizer and the data.
        head: The loss head the estimate assumed ("chunked" or "TRL fused").
    """

    weights: int
    adapter: int
    activations: int
    loss: int
    runtime: int
    head: str

    @property
    def total(self) -> int:
        return self.weights + self.adapter + self.activations + self.loss + self.runtime

    def summary(self, available: int | None = None) -> str:
        parts = ", ".join(
            f"{name} {value / GB:.1f} GB"
            for name, value in (
                ("weights", self.weights),
                ("adapter and optimizer", self.adapter),
                ("activations", self.activations),
                (f"loss ({self.head} head)", self.loss),
                ("runtime", self.runtime),
            )
        )
        free = f"; {available / GB:.1f} GB is available" if available is not None else ""
        return f"Estimated peak memory {self.total / GB:.1f} GB ({parts}){free}."


def estimate(shape: ModelShape, config: JobConfig, device: str = "cpu", head: str = "chunked") -> MemoryEstimate:
    """The peak memory of one training step of `config` on a model of `shape`.

    Args:
        shape: The base model's shape.
        config: The job: method, batch size, max length, LoRA rank and dropout, gradient checkpointing.
        device: "cpu" (fp32 weights) or a GPU ("cuda...": bf16 weights and activations).
        head: The loss head: "chunked" (Workbench's on the CPU) or "TRL fused" (TRL's tiles; on a GPU its kernel).
    """
    width = 2 if device.startswith("cuda") else 4
    # DPO scores a chosen and a rejected reply per example; KTO each reply and a mismatched one for its KL estimate.
    rows = config.batch_size * (2 if config.method in ("dpo", "kto") else 1)
    tokens = rows * config.max_length
    lora_inputs = 7 if config.lora_dropout > 0 else 0
    per_token_layer = (
        PER_HIDDEN * shape.hidden
        + PER_INTERMEDIATE * shape.intermediate
        + PER_LORA_INPUT * lora_inputs * shape.hidden
        + shape.heads * config.max_length  # attention probabilities (the CPU's attention keeps them)
    )
    if config.gradient_checkpointing:  # each layer's input, plus one layer recomputed at a time
        activations = tokens * (shape.layers * shape.hidden + per_token_layer) * width
    else:
        activations = tokens * shape.layers * per_token_layer * width
    if head == "chunked" or device.startswith("cuda"):
        loss = 3 * CHUNK_BYTES + tokens * shape.hidden * 4 * 2  # chunks, the selected hidden states and their grad
    else:
        loss = 6 * min(tokens, TRL_TILE[0]) * min(shape.vocab, TRL_TILE[1]) * 4
    return MemoryEstimate(
        weights=shape.params * width,
        adapter=shape.lora_params(config.lora_r) * 4 * 4,
        activations=int(activations),
        loss=int(loss),
        runtime=int(RUNTIME_BYTES),
        head=head,
    )


def _cgroup_free() -> int | None:
    """What the container's cgroup (v2) still allows, when it sets a limit."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - used)


def _mem_available() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def available_bytes(device: str = "cpu") -> int | None:
    """Memory free for a run on `device`: the GPU's free memory, else MemAvailable capped by the cgroup's limit."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    values = [v for v in (_mem_available(), _cgroup_free()) if v is not None]
    return min(values) if values else None


def check_fits(need: MemoryEstimate, available: int | None, device: str = "cpu") -> None:
    """Raise WorkbenchError, in one sentence, when the run cannot fit the memory available (None: unknown, pass)."""
    if available is None or need.total <= available:
        return
    where = "free on the GPU" if device.startswith("cuda") else "available on this machine"
    raise WorkbenchError(
        f"This run needs about {need.total / GB:.1f} GB but only {available / GB:.1f} GB is {where}: "
        "lower the batch size or the max length, or turn on gradient checkpointing."
    )


def planned_head(device: str) -> str:
    """The loss head a run on `device` will use (trainer.py decides it the same way, with `chunked_head.loss_head`):
    TRL's fused head where its Triton kernel runs (CUDA), the chunked head elsewhere."""
    return "TRL fused" if device.startswith("cuda") else "chunked"


def require_fit(config: JobConfig, settings: Settings, base: BaseModel) -> str:
    """The estimate's sentence for a run of `config` on `base` (empty when the model's shape is unknown).

    Raises:
        WorkbenchError: The run cannot fit the memory available on its device.
    """
    from workbench.generation.loading import choose_device

    shape = model_shape(base, settings)
    if shape is None:
        return ""
    device = choose_device(settings)
    need = estimate(shape, config, device, planned_head(device))
    available = available_bytes(device)
    check_fits(need, available, device)
    return need.summary(available)


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD = 1 << 20
TORCH_HUGE_PAGES = "THP_MEM_ALLOC_ENABLE"  # PyTorch's switch: CPU tensors of 2 MB or more on transparent huge pages
THP_SWITCH = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def return_freed_memory(threshold: int = MMAP_THRESHOLD) -> bool:
    """Have glibc give every allocation of `threshold` bytes or more its own mapping, so that a freed tensor goes
    back to the system at once; returns whether it took (False off glibc).

    Why: glibc raises its mmap threshold each time a large block is freed (up to 32 MB); from then on a step's
    tensors come from the heap, and freed heap memory below its top stays in the process. Measured on SmolLM2-135M
    (4 x 512 tokens, LoRA, gradient checkpointing, two steps): RSS climbed to 6.0 GB while the live tensors never
    passed 1.5 GB; with a fixed threshold (which also stops the raising) the peak stayed at 1.5 GB. A fixed 4 MiB
    threshold already peaked 16% higher, 16 or 32 MiB at 3.8 GiB (the heap fragments). The price is a fresh
    mapping per tensor, every 4 KiB page of it a page fault; `use_huge_pages` takes most of that back
    (docs/speed.md). The process is the training job's own, so the setting reaches nothing else. Under jemalloc
    (`use_jemalloc`, the default where installed) glibc's malloc is not used and this changes nothing.
    """
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False


def use_huge_pages() -> bool:
    """Have PyTorch put its CPU tensors of 2 MB or more on transparent huge pages (`THP_MEM_ALLOC_ENABLE`: 2 MB
    aligned, `madvise(MADV_HUGEPAGE)`); returns whether it takes effect. Call it before torch is imported: torch
    reads the variable once, at its first allocation.

    Why: with `return_freed_memory` every large tensor is a fresh mapping that the kernel fills in 4 KiB page
    faults, about 7.7 million per step of 2,048 tokens (31 GB of pages zeroed and mapped): the backbone's forward
    and backward took about 30% more CPU time than plain TRL's (glibc's default keeps reusing its heap). On huge
    pages the same tensors take one fault per 2 MB and the memory still goes back at once: 2.6 million faults per
    step, 10% less CPU time for the steps, the same peak (docs/speed.md). Where the kernel has transparent huge
    pages switched off (`never`), nothing is set.
    """
    import os
    import sys

    try:
        if "[never]" in THP_SWITCH.read_text(encoding="ascii"):
            return False
    except OSError:  # not Linux, or no THP support
        return False
    if "torch" in sys.modules:
        return False  # too late (torch allocates at import), and a process that loaded it stays as it is
    os.environ.setdefault(TORCH_HUGE_PAGES, "1")
    return os.environ[TORCH_HUGE_PAGES] == "1"


JEMALLOC = "jemalloc"
# Freed pages go back to the system after about a second (a step takes tens of seconds), by jemalloc's own thread.
JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0"
PRELOAD = "LD_PRELOAD"


def jemalloc_library() -> str | None:
    """jemalloc's shared library as the dynamic loader finds it (`libjemalloc.so.2`), or None where not installed."""
    import ctypes.util
    import sys

    return ctypes.util.find_library(JEMALLOC) if sys.platform.startswith("linux") else None


def _loaded(name: str) -> bool:
    """Whether a shared library named `lib<name>...` is mapped into this process (Linux)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return any(line.rstrip().rsplit("/", 1)[-1].startswith(f"lib{name}") for line in maps)
    except OSError:
        return False


def use_jemalloc(choice: str = "auto") -> str:
    """Re-execute this process once (the same pid, command line and environment) with jemalloc preloaded
    (`LD_PRELOAD`, tuned by `MALLOC_CONF`); returns the log's sentence on the allocator in use. Only a program's
    entry point may call it (`workbench train`, the bench's training side), before it loads anything it needs.

    Why: glibc either keeps freed memory in a heap that fragments (a training step's peak RSS x2.7) or, with
    `return_freed_memory`'s fixed threshold, maps every large tensor afresh (page faults: the backbone took about
    20% more CPU time than plain TRL's). jemalloc reuses freed memory within its size classes and hands it back
    on a decay timer: 9-29% more tokens per CPU-second than glibc, the same peak (docs/speed.md, "jemalloc").
    The allocator must be in place before the process's first malloc, so the way in is the loader's preload;
    re-executing is the one way that covers a run from the command line and from the Fine-tune tab's job alike.
    `choice` "system" (WORKBENCH_TRAIN_ALLOCATOR) keeps glibc.
    """
    import os
    import sys

    if _loaded(JEMALLOC):
        return f"Memory allocator: jemalloc ({os.environ.get('MALLOC_CONF') or 'its defaults'})."
    if choice == "system":
        return "Memory allocator: the system's (WORKBENCH_TRAIN_ALLOCATOR=system)."
    if "malloc" in os.environ.get(PRELOAD, ""):  # the operator's own allocator, or jemalloc the loader could not load
        return f"Memory allocator: as preloaded ({os.environ[PRELOAD]}); not re-executed."
    library = jemalloc_library()
    if library is None:
        return (
            "Memory allocator: the system's; jemalloc is not installed (Debian: libjemalloc2), so training steps "
            "take 10-30% more CPU time (docs/speed.md)."
        )
    env = {**os.environ, PRELOAD: " ".join(filter(None, (library, os.environ.get(PRELOAD))))}
    env["MALLOC_CONF"] = os.environ.get("MALLOC_CONF") or JEMALLOC_CONF  # the operator's own tuning stays
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)
    raise AssertionError("unreachable: execve replaces the process")  # pragma: no cover
