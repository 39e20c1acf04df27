"""The store's feedback as training data: each source declared once, for `workbench train`, the Fine-tune tab and
the job's command line.

    spec = SOURCES["likes"]                    # or by the run's method: for_method("kto")
    spec.flag                                  # "--from-likes"
    filters = spec.filters(since="2026-12-01") # the source's filters (`training.filters`)
    counts = spec.write(store, settings, filters, spec.path(settings, run))   # the run's file, whole or not at all
    records, counts = spec.count(store, settings, filters)                      # what it would hold (no file)
    spec.describe(counts)                      # "40 likes and dislikes -> 20 liked and 18 disliked replies."

A source is: DPO on the votes (the Arena's, the chat's regenerate pairs, corrections as pairs: `VoteFilters.source`),
KTO on the chat's likes and dislikes, or SFT on the chat's corrections. The run's method picks it (dpo, kto, sft),
so the tab's one "train on the store's feedback" box and the CLI's `--from-*` flags name the same three things.
`job` is the JobConfig field that records the filters and counts (None: the run's file is its record). Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.training import corrections, likes, votes
from workbench.training.filters import FeedbackFilters


@dataclass(frozen=True)
class Source:
    """One kind of the store's feedback a run trains on.

    Attributes:
        name: votes, likes or corrections.
        method: The training method it feeds (dpo, kto, sft).
        flag: The `workbench train` switch.
        filters: Its filters class.
        path: (settings, run) -> where the run's file is written (kept: a resume trains on the same file).
        write: (store, settings, filters, path) -> counts; writes the file or raises one sentence (too little).
        count: (store, settings, filters) -> (records, counts), writing nothing.
        describe: counts -> one sentence.
        job: The JobConfig field that records the filters and counts, or None.
    """

    name: str
    method: str
    flag: str
    filters: type[FeedbackFilters]
    path: Callable[[Any, str], Path]
    write: Callable[..., dict[str, int]]
    count: Callable[..., tuple[list[dict[str, Any]], dict[str, int]]]
    describe: Callable[[dict[str, int]], str]
    job: str | None


def _corrections_sft(store: Any, settings: Any, filters: FeedbackFilters):
    return votes.correction_examples(store, settings, filters, "sft")


SOURCES = {
    s.name: s
    for s in (
        Source(
            "votes",
            "dpo",
            "--from-votes",
            votes.VoteFilters,
            votes.pairs_path,
            votes.write_vote_pairs,
            votes.vote_pairs,
            votes.describe,
            "votes",
        ),
        Source(
            "likes",
            "kto",
            "--from-likes",
            likes.LikeFilters,
            likes.likes_path,
            likes.write_like_records,
            likes.like_records,
            likes.describe,
            "likes",
        ),
        Source(
            "corrections",
            "sft",
            "--from-corrections",
            FeedbackFilters,
            corrections.sft_path,
            corrections.write_corrections_sft,
            _corrections_sft,
            corrections.describe,
            None,
        ),
    )
}


def for_method(method: str) -> Source:
    """The source a run of `method` trains on when it trains on the store's feedback."""
    for source in SOURCES.values():
        if source.method == method:
            return source
    raise WorkbenchError(f"The store's feedback trains dpo, kto or sft runs, not {method!r}.")
