"""Model ids of the API, and the checkpoint each one names.

- the base model's own name (e.g. "SmolLM2-135M-Instruct") and `base`: the base model without an adapter;
- `RUN`: a training run's final adapter, which is its best checkpoint by validation loss when the run had
  validation data, else its last (`workbench.training.checkpoints.choose_final`);
- `RUN/checkpoint-N`: one saved checkpoint of a run;
- `remote:NAME` and `remote:NAME/ADAPTER`: the remote models of registry.yaml, for the owner, and for visitors
  only where WORKBENCH_VISITOR_CHECKPOINTS offers `remote` (they may cost money).

    ids = model_ids(settings, allowed)                 # [(id, checkpoint), ...] the caller may use
    checkpoint = resolve(settings, "my-run", allowed)  # "my-run"; ApiError 404 for an id it may not use

`allowed(checkpoint)` is the caller's rule (the owner any, a visitor what the owner offers). Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable

from workbench.api.errors import ApiError
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.router import choices
from workbench.registry import BASE_NAME, resolve_base


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
