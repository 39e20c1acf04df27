"""The prompt sets Workbench ships (Vicuna-bench and MT-bench questions), and loading them into the store.

The data lives in `evals/data/fastchat_bench/` with its SOURCE.md and licence. The dashboard loads the sets
on its first start; `python -m workbench prompts --load` does the same from the command line. Loading is
idempotent: a set already in the store is left as it is. Torch-free.

    from workbench.studio.promptsets import load_shipped
    load_shipped(store)                  # -> names of the sets it added
    store.prompts("vicuna-bench")[0]     # {"text": "How can I improve my time management skills?", ...}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config import REPO_ROOT
from workbench.errors import WorkbenchError

DATA_DIR = REPO_ROOT / "evals" / "data" / "fastchat_bench"


@dataclass(frozen=True)
class ShippedSet:
    """A prompt set shipped with Workbench: its name in the store, its file, and what it is."""

    name: str
    file: Path
    description: str


SHIPPED = (
    ShippedSet(
        "vicuna-bench",
        DATA_DIR / "vicuna_bench_questions.jsonl",
        "Vicuna-bench: 80 single-turn questions in 9 categories (FastChat, Apache-2.0).",
    ),
    ShippedSet(
        "mt-bench",
        DATA_DIR / "mt_bench_questions.jsonl",
        "MT-bench: the first turns of 80 two-turn questions in 8 categories; the second turn is in the "
        "metadata (FastChat, Apache-2.0).",
    ),
)


def find_shipped(name: str) -> ShippedSet:
    """The shipped set called `name`; WorkbenchError naming the choices otherwise."""
    for shipped in SHIPPED:
        if shipped.name == name:
            return shipped
    raise WorkbenchError(
        f"There is no shipped prompt set {name!r}; choose one of {', '.join(s.name for s in SHIPPED)}."
    )


def read_shipped(name: str) -> list[dict[str, Any]]:
    """The prompts of a shipped set in the form `Store.add_prompt_set` takes (text, reference, metadata)."""
    shipped = find_shipped(name)
    prompts = []
    for number, line in enumerate(shipped.file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            turns = row["turns"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise WorkbenchError(f"Line {number} of {shipped.file.name} is not a FastChat question.") from None
        metadata = {"question_id": row.get("question_id"), "category": row.get("category"), "source": shipped.name}
        if len(turns) > 1:
            metadata["later_turns"] = turns[1:]
        reference = row.get("reference")
        prompts.append(
            {
                "text": turns[0],
                "reference": reference[0] if isinstance(reference, list) and reference else None,
                "metadata": metadata,
            }
        )
    return prompts


def load_shipped(store: Any, names: Iterable[str] | None = None) -> list[str]:
    """Add the shipped prompt sets (all, or those named) that the store does not have yet; returns their names.

    Safe to call from several processes at once: a set another process added first is skipped.
    """
    wanted = [find_shipped(n) for n in names] if names is not None else list(SHIPPED)
    present = {p["name"] for p in store.prompt_sets()}
    added = []
    for shipped in wanted:
        if shipped.name in present:
            continue
        try:
            store.add_prompt_set(shipped.name, read_shipped(shipped.name), description=shipped.description)
        except WorkbenchError:
            if shipped.name not in {p["name"] for p in store.prompt_sets()}:
                raise
            continue  # another process loaded it between our check and our write
        added.append(shipped.name)
    return added
