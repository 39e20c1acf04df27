"""The store's corrections (chat replies a person edited) -> training files: SFT examples and DPO pairs.

    records, counts = correction_examples(store, settings, filters, "sft")    # the conversation, corrected
    records, counts = correction_examples(store, settings, filters, "pairs")  # corrected over the original
    write_corrections_sft(store, settings, filters, path)                    # `workbench train --from-corrections`

(`correction_examples` lives in `training.votes`, whose DPO pairs include corrections under source "edit" or "all".)

A correction trains like the other sources and under the filters every store source has (`filters.FeedbackFilters`):
`checkpoints` keeps corrections of replies those checkpoints made, `raters` and `rater_kind` whose corrections count
(people's by default), `origin` where the reply came from, `since`/`until` the days the corrections were made. Each
rater's newest correction of a reply is the one that counts (`Store.correction_rows`). A record carries the chat
template its reply was generated with when the checkpoint declared one, as pairs from votes do. Torch-free."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.training.filters import FeedbackFilters
from workbench.training.votes import correction_examples, write_records


def write_corrections_sft(store: Any, settings: Settings, filters: FeedbackFilters, path: Path) -> dict[str, int]:
    """Write the SFT file of the store's corrections under `filters` to `path` (JSONL) and return its counts.

    Raises:
        WorkbenchError: No correction passes the filters (nothing is written).
    """
    records, counts = correction_examples(store, settings, filters, "sft")
    if not records:
        raise WorkbenchError(
            f"No corrections to train on ({counts.get('corrections', 0)} in the store, "
            f"{counts.get('filtered_out', 0)} filtered out): edit some replies in the Chat tab first."
        )
    write_records(records, path)
    return counts


def describe(counts: dict[str, int]) -> str:
    """One sentence: how many corrections became how many SFT examples, and how many the filters left out."""
    dropped = f" ({counts['filtered_out']} filtered out)" if counts.get("filtered_out") else ""
    return f"{counts.get('corrections', 0)} corrections -> {counts.get('examples', 0)} SFT examples{dropped}."


def sft_path(settings: Settings, run: str) -> Path:
    """Where a run's SFT examples from corrections are written (kept: a resume trains on the same file)."""
    return settings.var_dir / "corrections" / f"{run}.jsonl"
