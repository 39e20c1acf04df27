"""Which checkpoints a caller may choose: the owner any; a visitor what WORKBENCH_VISITOR_CHECKPOINTS offers (remote
models may cost money, and adapters load into the shared server). The one rule of the app, the dashboard and the API.
"""

from __future__ import annotations

from workbench.config import Settings
from workbench.errors import WorkbenchError


def checkpoint_kind(checkpoint: str) -> str:
    """What a checkpoint name names, in WORKBENCH_VISITOR_CHECKPOINTS' words: base, adapters or remote."""
    from workbench.generation.router import REMOTE
    from workbench.registry import BASE_NAME

    return "remote" if checkpoint.startswith(REMOTE) else "base" if checkpoint in ("", BASE_NAME) else "adapters"


def may_choose(settings: Settings, owner: bool, checkpoint: str) -> bool:
    """Whether a caller may choose `checkpoint`: the owner any, a visitor what WORKBENCH_VISITOR_CHECKPOINTS
    offers (remote models may cost money, and adapters load into the shared server)."""
    return owner or checkpoint_kind(checkpoint) in settings.visitor_checkpoints


def check_checkpoint(settings: Settings, owner: bool, checkpoint: str | None) -> None:
    """Raise WorkbenchError with one sentence for a checkpoint the caller may not choose (see `may_choose`); the
    one rule of the app (`AppContext.check_checkpoint`) and the dashboard."""
    name = (checkpoint or "") if isinstance(checkpoint, str) else ""
    if len(name) > 300:
        raise WorkbenchError("That checkpoint name is too long.")
    if not may_choose(settings, owner, name):
        what = {"remote": "Remote models", "base": "The base model", "adapters": "Adapters"}[checkpoint_kind(name)]
        raise WorkbenchError(f"{what} are not offered to visitors on this server.")
