"""A trained adapter out of Workbench: merged into its base as a plain model, or as a plain PEFT folder.

    export_merged(settings, "my-run/checkpoint-20", Path("out/my-model"))   # safetensors + tokenizer + configs
    export_peft(settings, "my-run", Path("out/my-adapter"))                 # adapter_config.json + weights

The merged folder is what `AutoModelForCausalLM.from_pretrained(DIR)` and vLLM (`vllm serve DIR`) load with
no Workbench and no peft: peft's `merge_and_unload` folds the LoRA update into the base weights, which are
saved as safetensors with the model config, the base's generation config (its sampling defaults and end
tokens) and the tokenizer, carrying the chat template the adapter was trained with (a base model taught
to chat gets the one its run declared). `workbench.json` (the run's record) goes beside both forms. Files
land in a hidden temporary folder that is renamed into place, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.registry import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    CHAT_TEMPLATE_FILE,
    RUN_META,
    Adapter,
    find_adapter,
    resolve_base,
)


def _adapter(settings: Settings, name: str) -> tuple[Any, Adapter]:
    base = resolve_base(settings)
    if base.kind == "remote":
        raise WorkbenchError(f"{base.name} is a remote model: its weights are not here to merge into.")
    return base, find_adapter(settings, name, base)


def _fresh(out: Path) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise WorkbenchError(f"{out} already exists and is not empty; choose a new folder.")
    tmp = out.parent / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _land(tmp: Path, out: Path) -> None:
    if out.is_dir():
        out.rmdir()  # empty, checked by _fresh
    tmp.rename(out)


def _copy_record(adapter: Adapter, tmp: Path) -> None:
    if (adapter.path / RUN_META).is_file():
        shutil.copyfile(adapter.path / RUN_META, tmp / RUN_META)


def export_peft(settings: Settings, name: str, out: Path) -> dict[str, Any]:
    """Copy adapter `name` to `out` as a plain PEFT folder (what `PeftModel.from_pretrained` loads)."""
    base, adapter = _adapter(settings, name)
    tmp = _fresh(out)
    try:
        for file in (ADAPTER_CONFIG, ADAPTER_WEIGHTS, CHAT_TEMPLATE_FILE):
            if (adapter.path / file).is_file():
                shutil.copyfile(adapter.path / file, tmp / file)
        _copy_record(adapter, tmp)
        _land(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"adapter": adapter.name, "base": base.name, "form": "peft", "out": str(out)}


def export_merged(settings: Settings, name: str, out: Path) -> dict[str, Any]:
    """Merge adapter `name` into its base and save the result to `out` (safetensors, tokenizer, configs)."""
    import dataclasses

    from peft import PeftModel

    from workbench.generation.loading import load_base

    base, adapter = _adapter(settings, name)
    tmp = _fresh(out)
    try:
        # Merged on the CPU in the weights' own precision: a GPU adds nothing to an addition of matrices.
        loaded = load_base(base, dataclasses.replace(settings, device="cpu"))
        merged = PeftModel.from_pretrained(loaded.model, str(adapter.path)).merge_and_unload()
        merged.config.use_cache = True
        merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer = loaded.tokenizer
        if (adapter.path / CHAT_TEMPLATE_FILE).is_file():
            tokenizer.chat_template = (adapter.path / CHAT_TEMPLATE_FILE).read_text(encoding="utf-8")
        tokenizer.save_pretrained(tmp)
        _copy_record(adapter, tmp)
        _land(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = sorted(p.name for p in out.iterdir())
    return {"adapter": adapter.name, "base": base.name, "form": "merged", "out": str(out), "files": files}
