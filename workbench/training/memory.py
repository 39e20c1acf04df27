"""How much memory a fine-tuning run needs, before it starts, and whether the machine has it.

    shape = model_shape(base, settings)                    # from config.json or the GGUF's metadata; no weights
    need = estimate(shape, config, device="cpu")            # MemoryEstimate: weights, adapter, activations, loss...
    print(need.summary(available_bytes("cpu")))
    check_fits(need, available_bytes("cpu"))               # WorkbenchError, one sentence, when it cannot fit

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
