"""Send a new checkpoint to the Arena: answer the same prompts with it and with its parent, so the next votes
measure what training changed.

    parent = parent_of(settings, "dpo-run")               # "base", or the adapter the run started from
    counts = send_to_arena(engine, store, settings, "dpo-run", limit=8)   # {"generated": 16, "from_store": 0}

The Arena serves the least-rated pairs of two checkpoints' outputs for one prompt under the same settings, so
once both have answered the Arena's prompt set with its settings, the new pairs come up first, and the
leaderboard ranks parent and child side by side as votes arrive.
"""

from __future__ import annotations

from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.router import family_of, request_name
from workbench.generation.settings import GenerationSettings
from workbench.registry import BASE_NAME, find_adapter, served_bases
from workbench.studio.compare import run_prompt_set
from workbench.studio.promptsets import load_shipped

ARENA_PROMPTS = "vicuna-bench"


def parent_of(settings: Settings, checkpoint: str) -> str:
    """The checkpoint a trained adapter improves on: the adapter its run started from, else the base model (of the
    adapter's family: FAMILY/RUN's parent is FAMILY or FAMILY/ITS-START).

    Raises:
        WorkbenchError: No usable adapter of that name for the current base model.
    """
    main, *others = served_bases(settings)
    family, local = family_of(others, checkpoint)  # another family's adapter is FAMILY/RUN, its base FAMILY
    adapter = find_adapter(settings, local, family or main)
    parent = adapter.meta.get("init_adapter") or (adapter.meta.get("hyperparameters") or {}).get("init_adapter")
    return request_name(family, parent or BASE_NAME)


def send_to_arena(
    engine: Any,
    store: Any,
    settings: Settings,
    checkpoint: str,
    arena_settings: GenerationSettings,
    *,
    limit: int = 8,
    progress=None,
) -> dict[str, Any]:
    """Answer the first `limit` prompts of the Arena's prompt set with `checkpoint` and its parent.

    Returns:
        {"checkpoint", "parent", "prompts", "generated", "from_store"}
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 80:
        raise WorkbenchError(f"Send between 1 and 80 prompts to the Arena, not {limit!r}.")
    parent = parent_of(settings, checkpoint)
    load_shipped(store, [ARENA_PROMPTS])
    counts = run_prompt_set(
        engine, store, ARENA_PROMPTS, [parent, checkpoint], arena_settings, limit=limit, progress=progress
    )
    return {"checkpoint": checkpoint, "parent": parent, "prompts": limit, **counts}
