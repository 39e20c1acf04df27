"""The store's blind pairwise votes -> a preference file for DPO, with the filters and counts recorded.

    filters = VoteFilters(checkpoints=("base", "identity"), min_agreement=0.6, rater_kind="humans")
    counts = write_vote_pairs(store, settings, filters, path)   # {"votes": 40, "ties": 5, ..., "pairs": 28}

Three sources of pairwise judgements feed it, kept apart by `VoteFilters.source`: the Arena's blind votes ("arena", the
default), the chat's regenerate pairs ("chat": a visitor regenerated a reply and kept the new one) and the chat's
corrections ("edit": the text a person wrote in place of a reply, preferred over it; `correction_examples`, which
`training.corrections` also writes as SFT examples); "all" takes them all. Votes are grouped by the pair of outputs they
judged: each pair of outputs becomes at most one preference, its winner the majority of its decisive votes, kept when
that majority's share reaches `min_agreement`. By default a pair is used only when it is reviewed: its prompt is one the
owner gave or approved (a prompt set, the owner's own typing, visitors' prompts once approved: `Store.reviewed`), or two
or more distinct raters voted for its winner. A visitor who types a prompt and votes for the answer they want would
otherwise write the training data alone (issue 27); `VoteFilters.unreviewed` brings back every pair. Raters the owner
dropped never count. Only people's votes count unless `rater_kind` says "judges" (LLM judges', raters named
"judge:<model>") or "all"; `origin` and `since`/`until` keep the pairs whose two replies came from there and the votes
of those days. Ties and both-bad votes are dropped and counted, as are votes whose outputs were never stored (empty
text) and any pair whose two outputs answer different prompts. Each record carries the chat template its outputs were
generated with when their checkpoint declared one (an adapter of a base model taught to chat), so
`preferences.read_preferences` rebuilds the prompt exactly as the model saw it. Torch-free."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.registry import CHAT_TEMPLATE_FILE
from workbench.store.corrections import correction_pair, sft_example
from workbench.store.export import SOURCES
from workbench.training.filters import FeedbackFilters, feedback_filter
from workbench.training.preferences import MIN_PAIRS


@dataclass(frozen=True)
class VoteFilters(FeedbackFilters):
    """Which votes train a preference run: the store-feedback filters (`FeedbackFilters`: checkpoints, raters,
    rater kind, origin, dates) and the pairs' own.

    Attributes:
        same_settings: Keep only votes whose two outputs used the same generation settings.
        min_agreement: Share of a pair's decisive votes the majority needs (0.5 keeps any strict majority).
        source: "arena" (the Arena's blind votes), "chat" (the chat's regenerate pairs), "edit" (the chat's
            corrections) or "all".
        unreviewed: Also use pairs on prompts visitors typed (not approved) whose winner fewer than two distinct
            raters voted for: a single visitor's votes on their own prompts (off by default).
    """

    same_settings: bool = feedback_filter(False, "same-settings", "only outputs made with the same settings")
    min_agreement: float = feedback_filter(
        0.5, "min-agreement", "share of a pair's votes its winner needs (0.5-1)", metavar="SHARE", kind=float
    )
    source: str = feedback_filter(
        "arena",
        "source",
        "the Arena's blind votes, the chat's regenerate pairs (a reply regenerated and kept), its corrections "
        "(a reply a person edited, preferred over the original), or all",
        choices=SOURCES,
    )
    unreviewed: bool = feedback_filter(
        False,
        "unreviewed",
        "also pairs on prompts visitors typed (not approved) that fewer than two raters agree on; by default only "
        "reviewed pairs train",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        value = self.min_agreement
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.5 <= value <= 1:
            raise WorkbenchError(f"The minimum agreement must be between 0.5 and 1, not {value!r}.")
        if not isinstance(self.same_settings, bool):
            raise WorkbenchError(f"same_settings must be true or false, not {self.same_settings!r}.")
        if not isinstance(self.unreviewed, bool):
            raise WorkbenchError(f"unreviewed must be true or false, not {self.unreviewed!r}.")
        if self.source not in SOURCES:
            raise WorkbenchError(f"The votes' source must be one of {', '.join(SOURCES)}, not {self.source!r}.")


def _kept(row: dict[str, Any], filters: VoteFilters) -> bool:
    pair = (row["model_a"], row["model_b"]), (row["origin_a"], row["origin_b"])
    return filters.keeps(*pair, row["rater"], row["tstamp"]) and not (
        filters.same_settings and not row["same_settings"]
    )


def _template(settings: Settings, checkpoint: str, cache: dict[str, str | None]) -> str | None:
    """The chat template an adapter declared (saved beside it), or None: the base model's own."""
    if checkpoint not in cache:
        root = settings.adapters_dir.resolve()
        path = (root / checkpoint / CHAT_TEMPLATE_FILE).resolve()
        inside = root in path.parents and path.is_file()  # a stored name never reads outside the adapters folder
        cache[checkpoint] = path.read_text(encoding="utf-8") if inside else None
    return cache[checkpoint]


def vote_pairs(store: Any, settings: Settings, filters: VoteFilters) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(preference records, counts) from the store's votes under `filters`."""
    counts: Counter[str] = Counter()
    groups: dict[tuple[int, int], list[dict[str, Any]]] = {}
    dropped = set(store.dropped_raters())
    for row in store.pairwise_rows(filters.source):
        counts["votes"] += 1
        if row["rater"] in dropped:
            counts["dropped_raters"] += 1
        elif not _kept(row, filters):
            counts["filtered_out"] += 1
        elif row["winner"] in ("tie", "bothbad"):
            counts["ties" if row["winner"] == "tie" else "both_bad"] += 1
        elif not (row["output_a"] or "").strip() or not (row["output_b"] or "").strip():
            counts["without_outputs"] += 1
        elif row.get("messages_b") is not None and list(row["messages_b"]) != list(row["messages"]):
            counts["different_contexts"] += 1  # a multi-turn battle: each side went on from its own answers
        else:
            key = tuple(sorted((row["generation_a_id"], row["generation_b_id"])))
            groups.setdefault(key, []).append(row)
    records, cache = [], {}
    reviewed = set() if filters.unreviewed else store.reviewed(g for pair in groups for g in pair)
    for (ga, gb), rows in groups.items():
        first = rows[0]
        by_id = {first["generation_a_id"]: "a", first["generation_b_id"]: "b"}
        wins = Counter(by_id[r[f"generation_{r['winner']}_id"]] for r in rows)
        (side, n), *rest = [*wins.most_common(), ("", 0)]
        if n / len(rows) < filters.min_agreement or (rest and rest[0][1] == n):
            counts["below_agreement"] += len(rows)
            continue
        backers = {r["rater"] for r in rows if by_id[r[f"generation_{r['winner']}_id"]] == side}
        if not filters.unreviewed and len(backers) < 2 and not {ga, gb} <= reviewed:
            counts["unreviewed"] += len(rows)  # one rater's verdict on a prompt a visitor typed
            continue
        template_a = _template(settings, first["model_a"], cache)
        if template_a != _template(settings, first["model_b"], cache):
            counts["different_templates"] += len(rows)  # no one prompt text both outputs answered
            continue
        loser = "b" if side == "a" else "a"
        record = {
            "prompt": list(first["messages"]),
            "chosen": [{"role": "assistant", "content": first[f"output_{side}"]}],
            "rejected": [{"role": "assistant", "content": first[f"output_{loser}"]}],
            "chosen_checkpoint": first[f"model_{side}"],
            "rejected_checkpoint": first[f"model_{loser}"],
            "votes": len(rows),
        }
        if template_a is not None:
            record["chat_template"] = template_a
        records.append(record)
    if filters.source in ("all", "edit"):
        edits, edit_counts = correction_examples(store, settings, filters, "pairs")
        records += edits
        counts["corrections"] = edit_counts.get("corrections", 0)
        counts["filtered_out"] += edit_counts.get("filtered_out", 0)
    counts["pairs"] = len(records)
    return records, {k: n for k, n in counts.items() if n or k in ("votes", "pairs")}


CORRECTION_FORMS = ("sft", "pairs")


def correction_examples(
    store: Any, settings: Settings, filters: FeedbackFilters, form: str
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(records, counts) from the store's current corrections under `filters`, as SFT examples ("sft") or as
    preference pairs ("pairs"); counts are corrections, filtered_out and examples."""
    if form not in CORRECTION_FORMS:
        raise WorkbenchError(f"Corrections train as one of {', '.join(CORRECTION_FORMS)}, not {form!r}.")
    counts: Counter[str] = Counter()
    records, cache = [], {}
    for row in store.correction_rows():
        counts["corrections"] += 1
        if not filters.keeps_reply(row):
            counts["filtered_out"] += 1
            continue
        record = sft_example(row) if form == "sft" else correction_pair(row)
        if form == "pairs":
            record.update(chosen_checkpoint=None, rejected_checkpoint=row["model"], votes=1)
        template = _template(settings, row["model"], cache)
        if template is not None:
            record["chat_template"] = template
        records.append(record)
    counts["examples"] = len(records)
    return records, dict(counts)


def describe(counts: dict[str, int]) -> str:
    """One sentence: how many votes became how many pairs, and what was dropped why."""
    given = ("votes", "corrections", "pairs")
    dropped = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items() if k not in given and n)
    edits = f" and {counts['corrections']} corrections" if counts.get("corrections") else ""
    return f"{counts.get('votes', 0)} votes{edits} -> {counts.get('pairs', 0)} preference pairs" + (
        f" (dropped: {dropped})." if dropped else "."
    )


def write_vote_pairs(store: Any, settings: Settings, filters: VoteFilters, path: Path) -> dict[str, int]:
    """Write the preference file for `filters` to `path` (JSONL) and return its counts.

    Raises:
        WorkbenchError: No votes, or fewer usable pairs than preference training needs (nothing is written).
    """
    records, counts = vote_pairs(store, settings, filters)
    if not counts.get("votes") and not counts.get("corrections"):
        raise WorkbenchError("The store holds no votes yet: rate some pairs in the Arena or on the Rate page first.")
    if len(records) < MIN_PAIRS:
        raise WorkbenchError(f"Too few usable pairs: {describe(counts)} Preference training needs {MIN_PAIRS}.")
    write_records(records, path)
    return counts


def write_records(records: list[dict[str, Any]], path: Path) -> None:
    """Write a run's training records to `path` as JSONL, whole or not at all (a temporary file renamed)."""
    from workbench.store.export import write_jsonl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        write_jsonl(records, out)
    tmp.replace(path)


def pairs_path(settings: Settings, run: str) -> Path:
    """Where a run's pairs from votes are written (kept: a resume trains on the same file)."""
    return settings.var_dir / "preferences" / f"{run}.jsonl"
