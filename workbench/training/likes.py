"""The store's chat likes and dislikes -> an unpaired feedback file for KTO, with the filters and counts recorded.

    filters = LikeFilters(checkpoints=("base",), rater_kind="humans", since="2026-12-01")
    counts = write_like_records(store, settings, filters, path)   # {"reactions": 40, ..., "liked": 20, ...}

Each rater's current reaction to a reply counts once (a like taken back is gone; a like changed to a dislike is a
dislike), as the chat's counts show them. The filters are those every store source has (`filters.FeedbackFilters`, as
DPO on votes and corrections take them): the checkpoints that wrote the replies, the raters, whose reactions count
(people's by default, LLM judges' or both), where the reply came from and a date range. Reactions to a reply whose text
was never stored are dropped and counted. A reply liked by one rater and disliked by another stays twice, once with each
label: KTO weighs the two against each other as the raters did. Each record carries the chat template its reply was
generated with when its checkpoint declared one, as vote pairs do. Torch-free."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.training.filters import FeedbackFilters
from workbench.training.unpaired import MIN_EACH
from workbench.training.votes import _template, write_records

LikeFilters = FeedbackFilters  # likes and dislikes take exactly the filters every store source has


def like_records(store: Any, settings: Settings, filters: LikeFilters) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(prompt/completion/label records, counts) from the store's current likes and dislikes under `filters`."""
    counts: Counter[str] = Counter()
    records, cache = [], {}
    for row in store.reaction_rows():
        counts["reactions"] += 1
        if not filters.keeps_reply(row):
            counts["filtered_out"] += 1
        elif not (row["output"] or "").strip() or not row["messages"]:
            counts["without_outputs"] += 1
        else:
            liked = row["kind"] == "like"
            record = {
                "prompt": list(row["messages"]),
                "completion": [{"role": "assistant", "content": row["output"]}],
                "label": liked,
                "checkpoint": row["model"],
            }
            template = _template(settings, row["model"], cache)
            if template is not None:
                record["chat_template"] = template
            records.append(record)
            counts["liked" if liked else "disliked"] += 1
    return records, dict(counts)


def describe(counts: dict[str, int]) -> str:
    """One sentence: how many reactions became how many liked and disliked replies, and what was dropped."""
    dropped = ", ".join(
        f"{counts[k]} {k.replace('_', ' ')}" for k in ("filtered_out", "without_outputs") if counts.get(k)
    )
    return (
        f"{counts.get('reactions', 0)} likes and dislikes -> {counts.get('liked', 0)} liked and "
        f"{counts.get('disliked', 0)} disliked replies" + (f" (dropped: {dropped})." if dropped else ".")
    )


def write_like_records(store: Any, settings: Settings, filters: LikeFilters, path: Path) -> dict[str, int]:
    """Write the feedback file for `filters` to `path` (JSONL) and return its counts.

    Raises:
        WorkbenchError: No reactions, or fewer liked or disliked replies than KTO needs (nothing is written).
    """
    records, counts = like_records(store, settings, filters)
    if not counts.get("reactions"):
        raise WorkbenchError("The store holds no likes or dislikes yet: react to some chat replies first.")
    if min(counts.get("liked", 0), counts.get("disliked", 0)) < MIN_EACH:
        raise WorkbenchError(f"Too few usable reactions: {describe(counts)} KTO needs {MIN_EACH} of each.")
    write_records(records, path)
    return counts


def likes_path(settings: Settings, run: str) -> Path:
    """Where a run's replies from likes are written (kept: a resume trains on the same file)."""
    return settings.var_dir / "feedback" / f"{run}.jsonl"
