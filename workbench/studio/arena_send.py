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
from workbench.generation.settings import GenerationSettings
from workbench.studio.compare import run_prompt_set
from workbench.studio.lineage import run_start
from workbench.studio.promptsets import load_shipped

ARENA_PROMPTS = "vicuna-bench"


def parent_of(settings: Settings, checkpoint: str) -> str:
    """The checkpoint a trained adapter improves on, as requests name it: the adapter its run started from, else
    the base model, of the adapter's family (FAMILY/RUN's is FAMILY/ITS-START or FAMILY): `lineage.run_start`.

    For the run's adapter `run` that is its parent in `lineage.parent_of` too. For `run/checkpoint-N` it is still
    the run's start, not the run's previous save: the Arena asks people which reply is better, and two saves of
    one run a few steps apart mostly answer alike, so those votes would be spent on near-ties; against the run's
    start they measure what the training changed, and the verdict of `run/checkpoint-N` against its previous save
    still counts them through the leaderboard's ratings.

    Raises:
        WorkbenchError: No usable adapter of that name for its family's base model.
    """
    return run_start(settings, checkpoint).parent


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
