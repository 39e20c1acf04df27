"""The benchmark: performance targets measured as ratios against anchors, all in one run.

    python -m workbench bench                 # every case, a table
    python -m workbench bench --case llamacpp_decode --json

Each case is a function `case(ctx) -> list[Measure]` listed in CASES. A Measure holds a value and, where an
issue names an anchor, the anchor's value and their ratio, so a target reads the same on a fast or a slow
machine ("engine tokens/s is 0.97 of bare llama.cpp"). Nothing here is asserted: the figures go into notes
and the README, not into tests. Each case runs in a fresh interpreter.

Modules: `model` (loading, the transformers engine against bare `generate`, CPU dtype, perplexity), `serving` (the
llama.cpp backend against bare llama.cpp, several visitors through the running app, batched jobs against one request
at a time, agreement between backends), `capacity` (1 to 32 chats at once through the running app with a light SSE
client, against the raw engine (bare llama.cpp, no Python per token) and streamed bare llama.cpp; the measurement
behind the default slot count), `openai_api` (1, 8, 16 requests through `/v1/chat/completions`, streamed and not,
against the raw engine), `space` (how soon `python app.py` answers its first visitor, here and in a fresh venv made
from requirements.txt alone as a Space builds it), `ratings` (the leaderboard at 100,000 votes: the page and the
CLI, against the old row-wise path and a FastChat battle file), `load` (a public Space under load: twenty visitors
chatting and fifty voting through the running app for a minute: correctness under a crowd, whose latencies are
mostly its own load generator's), `quality` (a newcomer's first questions answered with the default settings,
against the old defaults), `train_memory` (`workbench train` against a plain TRL + peft script: peak memory,
tokens/s and losses, SFT and DPO; `phases` meters memory per phase of a training step), `feedback_loop` (likes and
dislikes of a known preference, trained with KTO: the liked-reply rate on held-out questions against the parent),
`families` (two base models served at once against one alone: RSS and tokens/s).
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

from workbench.config import Settings

STORY = [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}]


@dataclass
class Measure:
    """One measured figure, optionally against an anchor.

    Attributes:
        case: The case that measured it.
        name: What was measured.
        value: The measured value.
        unit: Its unit.
        anchor: What it is compared with, in words (empty when there is no anchor).
        anchor_value: The anchor's value in the same unit.
        ratio: value / anchor_value.
        note: How to read it, or what was decided from it.
    """

    case: str
    name: str
    value: float
    unit: str
    anchor: str = ""
    anchor_value: float | None = None
    ratio: float | None = None
    note: str = ""

    @classmethod
    def against(cls, case: str, name: str, value: float, unit: str, anchor: str, anchor_value: float, note: str = ""):
        return cls(case, name, value, unit, anchor, anchor_value, value / anchor_value if anchor_value else None, note)


class BenchContext:
    """What the cases share: settings, one engine on the configured model, repeat count."""

    def __init__(self, settings: Settings, repeats: int = 3, steps: int | None = None) -> None:
        self.settings = settings
        self.repeats = repeats
        self.steps = steps  # training steps per side for the training cases (None: the case's own default)

    @cached_property
    def engine(self):
        """The configured model on the transformers backend (the reference the model cases measure)."""
        from workbench.generation.engine import ChatEngine

        return ChatEngine.load(self.settings, backend="transformers")

    def median_time(self, fn: Callable[[], Any]) -> float:
        """Median wall time of `fn` over `repeats` runs, after one warm-up run."""
        fn()
        times = []
        for _ in range(self.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)


# case name -> "module:function" in this package, imported when the case runs
CASES = {
    "load": "model:case_load",
    "generation": "model:case_generation",
    "cpu_dtype": "model:case_cpu_dtype",
    "perplexity": "model:case_perplexity",
    "llamacpp_decode": "serving:case_llamacpp_decode",
    "llamacpp_ttft": "serving:case_llamacpp_ttft",
    "app_concurrency": "serving:case_app_concurrency",
    "serving_capacity": "capacity:case_serving_capacity",
    "slot_choice": "capacity:case_slot_choice",
    "openai_api": "openai_api:case_openai_api",
    "first_reply": "space:case_first_reply",
    "space_fresh_venv": "space:case_space_fresh_venv",
    "batched_jobs": "serving:case_batched_jobs",
    "agreement": "serving:case_agreement",
    "leaderboard_page": "ratings:case_leaderboard_page",
    "leaderboard_cli": "ratings:case_leaderboard_cli",
    "arena_sampling": "arena_sampling:case_arena_sampling",
    "public_load": "load:case_public_load",
    "demo_quality": "quality:case_demo_quality",
    "feedback_loop": "feedback_loop:case_feedback_loop",
    "train_memory": "train_memory:case_train_memory",
    "two_families": "families:case_two_families",
}


def run(
    settings: Settings,
    cases: list[str] | None = None,
    repeats: int = 3,
    progress: Callable[[str], None] | None = None,
    steps: int | None = None,
) -> list[Measure]:
    """Run the named cases (all by default) and return their measures."""
    from workbench.errors import WorkbenchError

    unknown = sorted(set(cases or []) - set(CASES))
    if unknown:
        raise WorkbenchError(f"Unknown benchmark case {unknown[0]!r}; the cases are {', '.join(CASES)}.")
    measures: list[Measure] = []
    # Each case runs in a fresh interpreter, so no case inherits another's threads, caches or memory.
    spawn = multiprocessing.get_context("spawn")
    for name in cases or list(CASES):
        if progress:
            progress(name)
        with spawn.Pool(1) as pool:
            measures += pool.apply(_run_case, (name, settings, repeats, steps))
    return measures


def _run_case(name: str, settings: Settings, repeats: int, steps: int | None = None) -> list[Measure]:
    import importlib

    module, function = CASES[name].split(":")
    case = getattr(importlib.import_module(f"workbench.bench.{module}"), function)
    return case(BenchContext(settings, repeats, steps))


def as_rows(measures: list[Measure]) -> list[dict[str, Any]]:
    """Measures as JSON-ready dicts."""
    return [asdict(m) for m in measures]


def format_table(measures: list[Measure]) -> str:
    """Measures as an aligned text table."""
    width = max([11, *(len(m.case) for m in measures)])
    lines = [f"{'case':<{width}} {'measure':<44} {'value':>12}  {'vs anchor':<34} {'ratio':>6}  note"]
    for m in measures:
        value = f"{m.value:.3g} {m.unit}"
        anchor = f"{m.anchor} {m.anchor_value:.3g}" if m.anchor_value is not None else ""
        ratio = f"{m.ratio:.2f}" if m.ratio is not None else ""
        lines.append(f"{m.case:<{width}} {m.name:<44} {value:>12}  {anchor:<34} {ratio:>6}  {m.note}")
    return "\n".join(lines)
