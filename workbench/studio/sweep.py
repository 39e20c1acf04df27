"""Sweeps over generation settings: one prompt, one or two axes (temperature, top-p, top-k, min-p, repetition
penalty, adapter strength), one or more checkpoints, N samples per cell with fixed seeds, and measures per cell.

    axes = parse_axes(["temperature=0,0.7,1.2", "top_p=0.9,1"])
    outputs = run(engine, messages, ["base", "my-run"], axes, samples=3, max_new_tokens=48)
    table = measure(outputs, references=["Paris is the capital."], logprob=lambda text, ckpt: ...)

Sample i of every cell uses seed `seed + i`, so cells differ only by their settings. Settings that are not swept
come from `base` (default: the app's defaults with top-k off, so top-p alone truncates). Per cell (`measure`):
mean_tokens, distinct_1, distinct_2, self_bleu (NaN with one sample), repetition (rep-3: the share of a text's
3-grams that repeat an earlier one, averaged), mean_logprob (mean token log-probability under the model, from the
caller's scorer), and bleu/chrf (mean sentence score against the references) when references are given.
An adapter-strength axis shows what strength of an adapter people would pick (0 is the base model's own text, 1
the adapter as trained); the base model ignores it, so its cells along that axis are the same reference text.
Torch-free: generation goes through the ChatEngine (or Router), scoring through the callable.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.evaluation.metrics.diversity import distinct_n, repetition_rate, self_bleu
from workbench.evaluation.metrics.overlap import sentence_scores
from workbench.generation.settings import GenerationSettings, Message

AXES = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "adapter_strength")
AXIS_LABELS = {"temperature": "temperature", "top_p": "top-p", "top_k": "top-k", "min_p": "min-p"}
AXIS_LABELS |= {"repetition_penalty": "rep. penalty", "adapter_strength": "adapter strength"}
METRICS = ("mean_tokens", "distinct_1", "distinct_2", "self_bleu", "repetition", "mean_logprob", "bleu", "chrf")
MAX_RUNS = 64  # cells x samples: each is one generation on a possibly slow CPU
BASE = GenerationSettings(top_k=0)


def check_axes(axes: dict[str, Sequence[float]]) -> dict[str, list[float]]:
    """One or two known axes with at least one value each, values validated as settings, sorted, no repeats."""
    if not isinstance(axes, dict) or not 1 <= len(axes) <= 2:
        raise WorkbenchError(f"Sweep one or two of {', '.join(AXES)}.")
    clean = {}
    for name, values in axes.items():
        if name not in AXES:
            raise WorkbenchError(f"{name!r} is not a setting to sweep; choose from {', '.join(AXES)}.")
        values = list(values or [])
        if not values:
            raise WorkbenchError(f"Give at least one value for {name}.")
        # Each value is checked by the settings themselves (one sentence for top_p=0 or a fractional top-k).
        checked = [getattr(BASE.replace(**{name: v}), name) for v in values]
        clean[name] = sorted(set(checked))
    return clean


def parse_axes(specs: Sequence[str]) -> dict[str, list[float]]:
    """Axes from "name=v1,v2,..." strings (the CLI form)."""
    axes: dict[str, list[float]] = {}
    for spec in specs:
        name, sep, values = str(spec).partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values.strip():
            raise WorkbenchError(f"An axis is NAME=V1,V2,... (e.g. temperature=0,0.7,1.2), not {spec!r}.")
        if name in axes:
            raise WorkbenchError(f"The axis {name} is given twice.")
        axes[name] = [v.strip() for v in values.split(",") if v.strip()]
    return check_axes(axes)


def cells(axes: dict[str, list[float]], base: GenerationSettings = BASE) -> list[GenerationSettings]:
    """The validated settings of every cell, in grid order (first axis slowest)."""
    names = list(axes)
    return [base.replace(**dict(zip(names, point, strict=True))) for point in itertools.product(*axes.values())]


def run(
    engine: Any,
    messages: Sequence[Message],
    checkpoints: Sequence[str],
    axes: dict[str, Sequence[float]],
    *,
    samples: int = 3,
    max_new_tokens: int = 48,
    seed: int = 0,
    base: GenerationSettings = BASE,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """`samples` outputs per (checkpoint, cell). Columns: checkpoint, each axis, sample, seed, output, new_tokens,
    finish_reason."""
    axes = check_axes(axes)
    checkpoints = list(dict.fromkeys(checkpoints or []))
    if not checkpoints:
        raise WorkbenchError("Choose at least one checkpoint to sweep.")
    if not 1 <= samples <= 10:
        raise WorkbenchError(f"Samples per setting must be between 1 and 10, not {samples}.")
    grid = cells(axes, base)
    total = len(checkpoints) * len(grid) * samples
    if total > MAX_RUNS:
        raise WorkbenchError(f"The sweep would make {total} generations; keep it at {MAX_RUNS} or fewer.")
    jobs = [(c, cell, i) for c in checkpoints for cell in grid for i in range(samples)]
    # Every cell at once: llama.cpp samples them side by side in its slots, each with its own seed.
    replies = engine.generate_many(
        [(messages, cell.replace(max_new_tokens=max_new_tokens, seed=seed + i), c) for c, cell, i in jobs],
        progress=progress,
    )
    rows = [
        {
            "checkpoint": c,
            **{name: getattr(cell, name) for name in axes},
            "sample": i,
            "seed": seed + i,
            "output": text,
            "new_tokens": stats.new_tokens,
            "finish_reason": stats.finish_reason,
        }
        for (c, cell, i), (text, stats) in zip(jobs, replies, strict=True)
    ]
    return pd.DataFrame(rows)


def suite_prompt(suite: str, example: int | str = 0) -> tuple[list[Message], list[str]]:
    """The prompt and references of one example of an evaluation suite (by position or id)."""
    from workbench.evaluation.suites import find_suite

    examples = find_suite(suite).load_examples(limit=0)
    if not examples:
        raise WorkbenchError(f"Suite {suite!r} has no examples.")
    for i, item in enumerate(examples):
        if str(example) in (item.id, str(i)):
            return list(item.prompt), list(item.references)
    raise WorkbenchError(f"Suite {suite!r} has no example {example!r}; give a position from 0 to {len(examples) - 1}.")


def axes_of(outputs: pd.DataFrame) -> list[str]:
    """The swept settings in a sweep's outputs, in order."""
    return [c for c in outputs.columns if c in AXES]


def measure(
    outputs: pd.DataFrame,
    references: Sequence[str] | None = None,
    logprob: Callable[[str, str], float] | None = None,
) -> pd.DataFrame:
    """One row per (checkpoint, cell) with the measures of the module docstring. `logprob(text, checkpoint)` gives
    an output's mean token log-probability; without it that column is NaN."""
    keys = ["checkpoint", *axes_of(outputs)]
    refs = [r for r in references or [] if isinstance(r, str) and r.strip()]
    rows = []
    for key, cell in outputs.groupby(keys, sort=True):
        texts = list(cell["output"])
        row = dict(zip(keys, key, strict=True))
        row |= {
            "samples": len(texts),
            "mean_tokens": float(cell["new_tokens"].mean()),
            "distinct_1": distinct_n(texts, 1),
            "distinct_2": distinct_n(texts, 2),
            "self_bleu": self_bleu(texts) if len(texts) > 1 else float("nan"),
            "repetition": sum(repetition_rate(t) for t in texts) / len(texts),
            "mean_logprob": float("nan"),
        }
        if logprob is not None:
            scores = [logprob(t, row["checkpoint"]) for t in texts if t.strip()]
            row["mean_logprob"] = sum(scores) / len(scores) if scores else float("nan")
        if refs:
            scores = sentence_scores(texts, [[r] * len(texts) for r in refs])
            row |= {m: sum(s[m] for s in scores) / len(scores) for m in ("bleu", "chrf")}
        rows.append(row)
    return pd.DataFrame(rows)
