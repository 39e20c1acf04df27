"""Which checkpoints a caller may choose: the owner any; a visitor what WORKBENCH_VISITOR_CHECKPOINTS offers (remote
models may cost money, and adapters load into the shared server). The one rule of the app, the dashboard and the API.
"""

from __future__ import annotations

from workbench.config import Settings
from workbench.errors import WorkbenchError


def checkpoint_kind(checkpoint: str, settings: Settings | None = None) -> str:
    """What a checkpoint name names, in WORKBENCH_VISITOR_CHECKPOINTS' words: base, adapters or remote (with
    `settings`, another served family's own name is a base model too)."""
    from workbench.generation.router import REMOTE, family_of
    from workbench.registry import BASE_NAME, served_bases

    if checkpoint.startswith(REMOTE):
        return "remote"
    if checkpoint in ("", BASE_NAME):
        return "base"
    if settings is not None:
        try:
            others = served_bases(settings)[1:]
        except WorkbenchError:
            others = []
        family, local = family_of(others, checkpoint)
        if family is not None and local == BASE_NAME:
            return "base"
    return "adapters"


def may_choose(settings: Settings, owner: bool, checkpoint: str) -> bool:
    """Whether a caller may choose `checkpoint`: the owner any, a visitor what WORKBENCH_VISITOR_CHECKPOINTS
    offers (remote models may cost money, and adapters load into the shared server)."""
    return owner or checkpoint_kind(checkpoint, settings) in settings.visitor_checkpoints


def check_checkpoint(settings: Settings, owner: bool, checkpoint: str | None) -> None:
    """Raise WorkbenchError with one sentence for a checkpoint the caller may not choose (see `may_choose`); the
    one rule of the app (`AppContext.check_checkpoint`) and the dashboard."""
    name = (checkpoint or "") if isinstance(checkpoint, str) else ""
    if len(name) > 300:
        raise WorkbenchError("That checkpoint name is too long.")
    if not may_choose(settings, owner, name):
        what = {"remote": "Remote models", "base": "The base model", "adapters": "Adapters"}[
            checkpoint_kind(name, settings)
        ]
        raise WorkbenchError(f"{what} are not offered to visitors on this server.")
