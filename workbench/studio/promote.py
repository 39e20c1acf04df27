"""The Space's default checkpoint: what a new visitor's chat starts on and what the Arena's settings pairs use.

    default_checkpoint(settings)                        # "base" until the owner promotes an adapter
    promotion = promote(settings, store, "my-run")      # refused when the verdict says worse
    promote(settings, store, "my-run", force=True)      # served anyway; the record says it was forced
    promote(settings, store, "base")                    # back to the base model

The choice is one small JSON file, `<adapters folder>/.default.json` (hidden: the registry lists no dot-folder or
file), written through a temporary file and a rename, so a reader never sees half of it; it records the checkpoint,
when, the verdict and whether it was forced. A missing, unreadable or stale file (the adapter was deleted) means the
base model, so the chat always starts on something that answers. Promoting an adapter first asks
`workbench.studio.lineage.compare_parent` for its verdict and writes its model card (`workbench.studio.modelcard`).
Who may promote is the caller's business: the app asks `AppContext.admin_refusal`, the CLI is the owner's shell.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.ratings.verdict import WORSE
from workbench.registry import BASE_NAME

DEFAULT_FILE = ".default.json"


def default_file(settings: Settings) -> Path:
    """Where the promoted checkpoint is recorded."""
    return settings.adapters_dir / DEFAULT_FILE


def read_default(settings: Settings) -> dict[str, Any]:
    """The promotion record ({} when none, or when the file cannot be read)."""
    try:
        data = json.loads(default_file(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("checkpoint"), str) else {}


def promoted(settings: Settings) -> str | None:
    """The checkpoint the owner promoted ("base" included) while it exists and is usable; None when none was."""
    name = read_default(settings).get("checkpoint")
    if name is None or name == BASE_NAME:
        return name
    from workbench.generation.router import request_name
    from workbench.studio.lineage import find_checkpoint

    try:
        family, adapter = find_checkpoint(settings, name)  # another family's adapter is FAMILY/RUN
    except WorkbenchError:
        return None
    return request_name(family, adapter.name)


def default_checkpoint(settings: Settings) -> str:
    """The checkpoint a new visitor starts on: the promoted one while it exists and is usable, else "base"."""
    return promoted(settings) or BASE_NAME


def _write_default(settings: Settings, record: dict[str, Any]) -> None:
    path = default_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{DEFAULT_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@dataclass(frozen=True)
class Promotion:
    """What `promote` did.

    Attributes:
        checkpoint: The new default.
        report: The verdict against its parent (`lineage.Report`), None for the base model.
        card: The model card written, None for the base model.
        forced: Whether it was promoted over a "worse" verdict.
    """

    checkpoint: str
    report: Any = None
    card: Path | None = None
    forced: bool = False

    def summary(self) -> str:
        """One sentence for the owner."""
        if self.report is None:
            return f"New visitors now start on {self.checkpoint}."
        verdict = self.report.verdict.outcome
        forced = " (forced over a worse verdict)" if self.forced else ""
        return (
            f"New visitors now start on {self.checkpoint}{forced}; against its parent {self.report.lineage.parent} "
            f"it is {verdict}. Model card: {self.card}."
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: checkpoint, forced, card, summary and the verdict report."""
        return {
            "checkpoint": self.checkpoint,
            "forced": self.forced,
            "card": str(self.card) if self.card else None,
            "summary": self.summary(),
            "verdict": self.report.as_dict() if self.report is not None else None,
        }


def promote(
    settings: Settings, store: Any, checkpoint: str, *, force: bool = False, license: str | None = None
) -> Promotion:
    """Make `checkpoint` the Space's default (see the module docstring).

    Raises:
        WorkbenchError: No such usable adapter, or its verdict against its parent is "worse" and `force` is False.
    """
    checkpoint = (checkpoint or "").strip()
    if checkpoint in ("", BASE_NAME):
        _write_default(settings, {"checkpoint": BASE_NAME, "time": time.time()})
        return Promotion(BASE_NAME)
    from workbench.studio.lineage import compare_parent
    from workbench.studio.modelcard import write_card

    report = compare_parent(settings, store, checkpoint)
    worse = report.verdict.outcome == WORSE
    if worse and not force:
        why = report.verdict.reason.rstrip(".")
        raise WorkbenchError(
            f"{report.lineage.child} is worse than its parent {report.lineage.parent} ({why}), so it was not "
            "promoted; force it to promote it anyway."
        )
    card = write_card(settings, report, license)
    record = {
        "checkpoint": report.lineage.child,
        "time": time.time(),
        "parent": report.lineage.parent,
        "verdict": report.verdict.outcome,
        "reason": report.verdict.reason,
        "forced": worse,
    }
    _write_default(settings, record)
    return Promotion(report.lineage.child, report, card, worse)
