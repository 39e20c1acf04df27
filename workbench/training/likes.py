"""The store's chat likes and dislikes -> an unpaired feedback file for KTO, with the filters and counts recorded.

    filters = LikeFilters(checkpoints=("base",), rater_kind="humans", since="2026-12-01")
    counts = write_like_records(store, settings, filters, path)   # {"reactions": 40, ..., "liked": 20, ...}

Each rater's current reaction to a reply counts once (a like taken back is gone; a like changed to a dislike is a
dislike), as the chat's counts show them. The filters are the DPO-from-votes path's (`votes.VoteFilters`): the
checkpoints that wrote the replies, the raters, whose reactions count (people's by default, LLM judges' or both),
plus where the reply came from (the chat's replies by default) and a date range. Reactions to a reply whose text
was never stored are dropped and counted. A reply liked by one rater and disliked by another stays twice, once
with each label: KTO weighs the two against each other as the raters did. Each record carries the chat template
its reply was generated with when its checkpoint declared one, as vote pairs do. Torch-free.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.store.records import check_rater_kind, is_judge
from workbench.training.unpaired import MIN_EACH
from workbench.training.votes import _template

ORIGINS = ("chat", "all")  # the chat's replies (where likes are given), or every stored reply that has reactions


def _day(value: str | None, name: str) -> float | None:
    """Epoch seconds of the start of an ISO date (YYYY-MM-DD, UTC), or None."""
    if value is None or not str(value).strip():
        return None
    try:
        day = datetime.strptime(str(value).strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise WorkbenchError(f"The {name} date must be a date such as 2026-12-01, not {value!r}.") from None
    return day.timestamp()


@dataclass(frozen=True)
class LikeFilters:
    """Which likes and dislikes train a KTO run.

    Attributes:
        checkpoints: Keep reactions to replies of these checkpoints (empty: any).
        raters: Keep reactions by these raters (empty: any).
        rater_kind: Whose reactions count: "humans" (people's, the default), "judges" (LLM judges') or "all".
        origin: "chat" (replies of the chat, the default) or "all".
        since: Keep reactions given on or after this date (YYYY-MM-DD, UTC; None: from the first).
        until: Keep reactions given on or before this date (inclusive; None: to the last).
    """

    checkpoints: tuple[str, ...] = ()
    raters: tuple[str, ...] = ()
    rater_kind: str = "humans"
    origin: str = "chat"
    since: str | None = None
    until: str | None = None

    def __post_init__(self) -> None:
        for name in ("checkpoints", "raters"):
            value = getattr(self, name)
            value = (value,) if isinstance(value, str) else tuple(value or ())
            object.__setattr__(self, name, tuple(v.strip() for v in value if v and v.strip()))
        object.__setattr__(self, "rater_kind", check_rater_kind(self.rater_kind))
        if self.origin not in ORIGINS:
            raise WorkbenchError(f"The replies' origin must be one of {', '.join(ORIGINS)}, not {self.origin!r}.")
        start, end = self.window
        if start is not None and end is not None and end <= start:
            raise WorkbenchError(f"The date range ends ({self.until}) before it starts ({self.since}).")

    @property
    def window(self) -> tuple[float | None, float | None]:
        """(first second, second after the last day) of the date range, epoch seconds; None where open."""
        end = _day(self.until, "until")
        return _day(self.since, "since"), None if end is None else end + timedelta(days=1).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def keeps(self, row: dict[str, Any]) -> bool:
        """Whether a `store.reaction_rows()` row passes the filters."""
        start, end = self.window
        return not (
            (self.checkpoints and row["model"] not in self.checkpoints)
            or (self.raters and row["rater"] not in self.raters)
            or (self.rater_kind != "all" and is_judge(row["rater"]) != (self.rater_kind == "judges"))
            or (self.origin != "all" and row["origin"] != self.origin)
            or (start is not None and row["tstamp"] < start)
            or (end is not None and row["tstamp"] >= end)
        )


def like_records(store: Any, settings: Settings, filters: LikeFilters) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(prompt/completion/label records, counts) from the store's current likes and dislikes under `filters`."""
    counts: Counter[str] = Counter()
    records, cache = [], {}
    for row in store.reaction_rows():
        counts["reactions"] += 1
        if not filters.keeps(row):
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
    from workbench.store.export import write_jsonl

    records, counts = like_records(store, settings, filters)
    if not counts.get("reactions"):
        raise WorkbenchError("The store holds no likes or dislikes yet: react to some chat replies first.")
    if min(counts.get("liked", 0), counts.get("disliked", 0)) < MIN_EACH:
        raise WorkbenchError(f"Too few usable reactions: {describe(counts)} KTO needs {MIN_EACH} of each.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        write_jsonl(records, out)
    tmp.replace(path)
    return counts


def likes_path(settings: Settings, run: str) -> Path:
    """Where a run's replies from likes are written (kept: a resume trains on the same file)."""
    return settings.var_dir / "feedback" / f"{run}.jsonl"
