"""What a checkpoint changed over a suite of prompts: each example's reply read under two checkpoints of one base
model (`workbench.generation.tokenshift`), then the tokens (by their text) whose probability moved most.

    readings = suite_shift(engine, "identity_heldout", "base", "my-run", limit=8, replies="references")
    table = moved_most(readings, top=20, min_count=2)
    # token, count, mean_shift (nats, after - before), ratio (exp of it), before, after (mean probabilities)

The replies read are the suite's first reference per example ("references": what the data says a good answer is)
or the `after` checkpoint's own greedy replies at the suite's settings ("generated": what it says now). The Lab page
and `workbench token-shift` show the same. Torch-free here; the engine (or Router) does the model work.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.generation.settings import Message
from workbench.generation.tokenshift import check_pair, token_shift

REPLIES = ("references", "generated")
MAX_PROMPTS = 64  # two teacher-forced passes per prompt (plus a generation): a minute or two on a CPU at 64
COLUMNS = ["token", "count", "mean_shift", "ratio", "before", "after"]


def suite_prompts(suite: str, limit: int) -> list[tuple[list[Message], list[str]]]:
    """(prompt, references) of the first `limit` examples of a generation suite; one sentence for a bad limit."""
    from workbench.evaluation.suites import find_suite

    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PROMPTS:
        raise WorkbenchError(f"Read between 1 and {MAX_PROMPTS} prompts of the suite, not {limit!r}.")
    found = find_suite(suite)
    if found.kind == "perplexity":
        raise WorkbenchError(f"Suite {suite!r} scores plain text; choose a suite of prompts.")
    return [(list(e.prompt), list(e.references)) for e in found.load_examples(limit=limit)]


def suite_replies(
    engine: Any, suite: str, after: str, *, limit: int = 8, replies: str = "references"
) -> list[tuple[list[Message], str]]:
    """(prompt, reply) per example: its first reference, or `after`'s greedy reply at the suite's settings."""
    from workbench.evaluation.suites import find_suite

    if replies not in REPLIES:
        raise WorkbenchError(f"Read the suite's {' or '.join(REPLIES)} replies, not {replies!r}.")
    prompts = suite_prompts(suite, limit)
    if replies == "references":
        pairs = [(prompt, refs[0]) for prompt, refs in prompts if refs and refs[0].strip()]
        if not pairs:
            raise WorkbenchError(f"Suite {suite!r} has no reference replies to read; read generated replies instead.")
        return pairs
    settings = find_suite(suite).generation
    made = engine.generate_many([(prompt, settings, after) for prompt, _ in prompts])
    return [(prompt, text) for (prompt, _), (text, _) in zip(prompts, made, strict=True) if text.strip()]


def suite_shift(
    engine: Any,
    suite: str,
    before: str,
    after: str,
    *,
    limit: int = 8,
    replies: str = "references",
    progress: Callable[[int, int], None] | None = None,
) -> list[list[dict[str, Any]]]:
    """Each example's token rows (`tokenshift.token_shift`) under `before` and `after`; `progress(done, total)`
    after each. Both checkpoints are checked before anything is generated."""
    check_pair(engine, before, after)
    pairs = suite_replies(engine, suite, after, limit=limit, replies=replies)
    readings = []
    for done, (prompt, reply) in enumerate(pairs, start=1):
        readings.append(token_shift(engine, prompt, reply, before, after))
        if progress is not None:
            progress(done, len(pairs))
    return readings


def moved_most(readings: Sequence[Sequence[dict[str, Any]]], *, top: int = 20, min_count: int = 2) -> pd.DataFrame:
    """The `top` tokens (by text) seen at least `min_count` times whose mean log-probability shift is largest in
    size, largest first: count, mean shift (nats), its ratio, and the mean probability under each checkpoint.

    A token seen once moves with its one context; `min_count` keeps the table to what the checkpoint does again
    and again. Pandas does the grouping.
    """
    if top < 1 or min_count < 1:
        raise WorkbenchError(f"Show at least 1 token seen at least once, not top {top} with count {min_count}.")
    rows = [(r["token"], r["shift"], r["before"], r["after"]) for reading in readings for r in reading]
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.DataFrame(rows, columns=["token", "shift", "before", "after"])
    grouped = frame.groupby("token", sort=False).agg(
        count=("shift", "size"), mean_shift=("shift", "mean"), before=("before", "mean"), after=("after", "mean")
    )
    grouped = grouped[grouped["count"] >= min_count].reset_index()
    grouped["ratio"] = grouped["mean_shift"].map(math.exp)
    order = grouped["mean_shift"].abs().sort_values(ascending=False, kind="stable").index
    return grouped.loc[order, COLUMNS].head(top).reset_index(drop=True)
