"""The suites' metrics of one checkpoint against another, with a paired bootstrap interval where the items allow.

    deltas = metric_deltas(store, "run/checkpoint-40", "run/checkpoint-20")    # [MetricDelta, ...]
    deltas[0].interval(0.95)                                                    # (lower, upper) of child - parent

For each (suite, metric) that both checkpoints have a result for, the newest result of each is compared. Where the
store holds each item's outputs for both, on the same items, the difference gets a paired bootstrap interval
(Koehn 2004; what sacrebleu's `--paired-bs` does): the same resample of items for both checkpoints, the corpus
metric recomputed on each (BLEU and chrF from sacrebleu's sufficient statistics, response perplexity from each
item's total negative log-likelihood and token count), and the interval read from the differences' percentiles.
Text perplexity is one number over sliding windows with nothing stored per item: its delta is shown without an
interval and the rule does not count it. Results on different data (their dataset hashes differ) are not compared.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.evaluation.views import LOWER_IS_BETTER, metric_label

RESAMPLES = 2000  # enough draws for the tails of a Bonferroni-adjusted interval (1 - 0.05/5: 5 draws per tail)
SEED = 0
OVERLAP = ("bleu", "chrf")


@dataclass(frozen=True)
class MetricDelta:
    """One metric of one suite on child and parent.

    Attributes:
        name: "chrF on identity_heldout".
        suite, metric: The suite and the metric ("identity_heldout", "chrf").
        child, parent: The two values (None when not compared).
        higher_is_better: False for the perplexities.
        n: Items (or windows) the smaller result rests on.
        interval: level -> (lower, upper) of child - parent, or None where there is no paired interval.
        note: How the interval was made, or why there is none.
    """

    name: str
    suite: str
    metric: str
    child: float | None
    parent: float | None
    higher_is_better: bool
    n: int
    interval: Callable[[float], tuple[float, float]] | None = None
    note: str = ""


def newest(results: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    """The newest result per (suite, metric) in `Store.eval_results()` rows of one checkpoint."""
    out: dict[tuple[str, str], pd.Series] = {}
    for _, row in results.sort_values(["created_at", "id"]).iterrows():
        out[(row["suite"], row["metric"])] = row
    return out


def _percentiles(deltas: np.ndarray) -> Callable[[float], tuple[float, float]]:
    def interval(level: float) -> tuple[float, float]:
        tail = 100 * (1 - level) / 2
        return float(np.percentile(deltas, tail)), float(np.percentile(deltas, 100 - tail))

    return interval


def _paired(child: pd.DataFrame, parent: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The two results' items, lined up by index, when both hold the same items (same prompts); else None."""
    if child.empty or len(child) != len(parent):
        return None
    child, parent = child.sort_values("example_index"), parent.sort_values("example_index")
    if list(child["example_index"]) != list(parent["example_index"]):
        return None
    if list(child["prompt"].fillna("")) != list(parent["prompt"].fillna("")):
        return None
    return child.reset_index(drop=True), parent.reset_index(drop=True)


def _draws(n: int) -> np.ndarray:
    """How many times each of n items is drawn in each resample (rows), the same for both checkpoints."""
    return np.random.default_rng(SEED).multinomial(n, np.full(n, 1.0 / n), size=RESAMPLES)


def _overlap_deltas(metric: str, child: pd.DataFrame, parent: pd.DataFrame) -> np.ndarray | None:
    from workbench.evaluation.metrics.overlap import resampled_scores, streams_from_examples

    if child["hypothesis"].isna().any() or parent["hypothesis"].isna().any() or child["references"].isna().any():
        return None
    streams = streams_from_examples(list(child["references"]))
    draws = _draws(len(child))
    scores = [resampled_scores(list(f["hypothesis"]), streams, metric, draws) for f in (child, parent)]
    return np.asarray(scores[0]) - np.asarray(scores[1])


def _nll(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    meta = frame["metadata"].map(lambda m: m if isinstance(m, dict) else {})
    nll, tokens = meta.map(lambda m: m.get("total_nll")), meta.map(lambda m: m.get("predicted_tokens"))
    if nll.isna().any() or tokens.isna().any():
        return None
    return nll.to_numpy(float), tokens.to_numpy(float)


def _perplexity_deltas(child: pd.DataFrame, parent: pd.DataFrame) -> np.ndarray | None:
    sides = [_nll(child), _nll(parent)]
    if any(s is None for s in sides):
        return None
    draws = _draws(len(child)).astype(float)
    ppl = [np.exp((draws @ nll) / np.maximum(draws @ tokens, 1.0)) for nll, tokens in sides]
    return ppl[0] - ppl[1]


def _interval(store: Any, metric: str, child: pd.Series, parent: pd.Series) -> tuple[Any, str]:
    """(the interval function or None, a note on how it was made or why there is none)."""
    if metric not in (*OVERLAP, "response_perplexity"):
        return None, "no per-item scores stored for this metric, so no interval (not counted)"
    paired = _paired(store.eval_examples(int(child["id"])), store.eval_examples(int(parent["id"])))
    if paired is None:
        return None, "the two results do not hold the same items, so no paired interval (not counted)"
    deltas = _overlap_deltas(metric, *paired) if metric in OVERLAP else _perplexity_deltas(*paired)
    if deltas is None:
        return None, "the stored items lack what the metric needs, so no interval (not counted)"
    return _percentiles(deltas), f"paired bootstrap over {len(paired[0])} items, {RESAMPLES} resamples"


def metric_deltas(store: Any, child: str, parent: str) -> list[MetricDelta]:
    """One delta per (suite, metric) both checkpoints have results for (names as the store has them)."""
    mine, theirs = newest(store.eval_results(checkpoint=child)), newest(store.eval_results(checkpoint=parent))
    deltas = []
    for key in sorted(set(mine) & set(theirs)):
        (suite, metric), c, p = key, mine[key], theirs[key]
        name = f"{metric_label(metric)} on {suite}"
        higher = metric not in LOWER_IS_BETTER
        n = int(min(c["num_examples"] or 0, p["num_examples"] or 0)) if pd.notna(c["num_examples"]) else 0
        if c["dataset_hash"] and p["dataset_hash"] and c["dataset_hash"] != p["dataset_hash"]:
            note = "measured on different data (dataset hashes differ): not compared"
            deltas.append(MetricDelta(name, suite, metric, None, None, higher, n, note=note))
            continue
        interval, note = _interval(store, metric, c, p)
        value = [float(c["value"]), float(p["value"])]
        if not all(math.isfinite(v) for v in value):
            interval, note = None, "a value is not a number (not counted)"
        deltas.append(MetricDelta(name, suite, metric, *value, higher, n, interval, note))
    return deltas
