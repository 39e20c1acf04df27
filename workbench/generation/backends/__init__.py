"""Generation backends behind the one ChatEngine contract, chosen by name.

- `transformers`: `model.generate` on any hub, folder or GGUF model; GPUs; the reference for perplexity,
  token probabilities and training.
- `llamacpp`: llama.cpp in process on a GGUF model; several requests at once, LoRA per request. The default
  for a GGUF base model without a GPU (the embedded model included).
- `openai`: a remote model on any OpenAI-compatible server (registry.yaml's `backend: openai` entries).

`WORKBENCH_BACKEND=auto|transformers|llamacpp` chooses; `auto` is llama.cpp for a GGUF base when no GPU is
present, transformers otherwise; a remote model always uses `openai`. A backend module is imported only when
it is chosen. A new backend is a module with a class that has `load(base, settings)` and the `Backend`
methods of `base.py`, and a line in BACKENDS.
"""

from __future__ import annotations

import importlib
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.registry import BaseModel

BACKENDS = {
    "transformers": "workbench.generation.backends.transformers:TransformersBackend",
    "llamacpp": "workbench.generation.backends.llamacpp:LlamaCppBackend",
    "openai": "workbench.generation.backends.openai:OpenAIBackend",
}


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def choose_backend(settings: Settings, base: BaseModel, wanted: str | None = None) -> str:
    """The backend to serve `base`: `wanted`, else the settings' choice, resolving "auto"."""
    name = wanted or settings.backend
    if base.kind == "remote":
        if wanted not in (None, "openai"):
            raise WorkbenchError(f"{base.name!r} is a remote model: it runs on its server, not on {wanted}.")
        return "openai"
    if name == "openai":
        raise WorkbenchError(f"The openai backend serves remote models from registry.yaml, and {base.name!r} is local.")
    if name == "auto":
        on_gpu = settings.device.startswith("cuda") or (settings.device == "auto" and _has_gpu())
        return "llamacpp" if base.kind == "gguf" and not on_gpu else "transformers"
    if name not in BACKENDS:
        raise WorkbenchError(f"Backend must be one of auto, transformers, llamacpp, not {name!r}.")
    return name


def load_backend(name: str, base: BaseModel, settings: Settings) -> Any:
    """Load backend `name` on `base` (see BACKENDS)."""
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls).load(base, settings)
