"""Model ids of the API, and the checkpoint each one names.

- the base model's own name (e.g. "SmolLM2-135M-Instruct") and `base`: the base model without an adapter;
- `RUN`: a training run's final adapter, which is its best checkpoint by validation loss when the run had
  validation data, else its last (`workbench.training.checkpoints.choose_final`);
- `RUN/checkpoint-N`: one saved checkpoint of a run;
- `remote:NAME` and `remote:NAME/ADAPTER`: the remote models of registry.yaml, for the owner, and for visitors
  only where WORKBENCH_VISITOR_CHECKPOINTS offers `remote` (they may cost money).

    ids = model_ids(settings, allowed)                 # [(id, checkpoint), ...] the caller may use
    checkpoint = resolve(settings, "my-run", allowed)  # "my-run"; ApiError 404 for an id it may not use
    entries = model_objects(settings, allowed)         # GET /v1/models' data: OpenAI's model objects

`allowed(checkpoint)` is the caller's rule (the owner any, a visitor what the owner offers). Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.api.errors import ApiError
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.router import choices
from workbench.registry import ADAPTER_WEIGHTS, BASE_NAME, list_adapters, resolve_base, served_bases

OWNER = "workbench"  # `owned_by` of every model object (clients show it beside the id; Open WebUI groups by it)


def model_ids(settings: Settings, allowed: Callable[[str], bool]) -> list[tuple[str, str]]:
    """(model id, checkpoint) for every checkpoint the caller may use; the base model twice (name and `base`)."""
    try:
        base = resolve_base(settings).name
        names = choices(settings)
    except WorkbenchError:
        return []
    ids = [(base, BASE_NAME)] if base != BASE_NAME and allowed(BASE_NAME) else []
    return ids + [(name, name) for name in names if allowed(name)]


def resolve(settings: Settings, model: str, allowed: Callable[[str], bool]) -> str:
    """The checkpoint the model id names; ApiError 404 (one sentence) for an unknown id or one the caller may not
    use (not told apart, so a visitor learns nothing of what is hidden)."""
    for known, checkpoint in model_ids(settings, allowed):
        if known == model:
            return checkpoint
    shown = model if len(model) <= 100 else model[:100] + "…"
    raise ApiError(
        404, f"There is no model {shown!r} here: the models endpoint lists them.", param="model", code="model_not_found"
    )


def model_objects(settings: Settings, allowed: Callable[[str], bool], only: str | None = None) -> list[dict[str, Any]]:
    """OpenAI's model object for every id the caller may use (or for the id `only`): `id`, `object` "model",
    `created` and `owned_by`, the four fields of OpenAI's reference that clients read (the `openai` client's Model,
    Open WebUI's model list). `created` is when the checkpoint was made, in Unix seconds: its adapter weights' time,
    or the base model file's; 0 where nothing of it is on this machine (a hub id not downloaded, a remote model)."""
    made = _made(settings)
    return [
        {"id": name, "object": "model", "created": made.get(checkpoint, 0), "owned_by": OWNER}
        for name, checkpoint in model_ids(settings, allowed)
        if only is None or name == only
    ]


def _made(settings: Settings) -> dict[str, int]:
    """Checkpoint name -> when it was written (Unix seconds), for every local family's base and adapters (the
    main family's as "base" and "RUN", another's as "FAMILY" and "FAMILY/RUN", the names `choices` gives)."""
    try:
        main, *others = served_bases(settings)
    except WorkbenchError:
        return {}
    made: dict[str, int] = {}
    for base, prefix in [(main, "")] + [(b, f"{b.name}/") for b in others]:
        made[prefix.rstrip("/") or BASE_NAME] = _mtime(Path(base.source)) if base.kind in ("gguf", "folder") else 0
        for adapter in list_adapters(settings, base):
            made[prefix + adapter.name] = _mtime(adapter.path / ADAPTER_WEIGHTS) or _mtime(adapter.path)
    return made  # later families overwrite: a family's name wins over a main-family run of that name (`choices`)


def _mtime(path: Path) -> int:
    try:
        return int(path.stat().st_mtime)
    except OSError:
        return 0
