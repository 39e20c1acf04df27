"""Evaluation results and training logs shaped for the Metrics page: what each chart and table shows.

Pure pandas over the store's DataFrame of results (`Store.eval_results()`). Torch-free. Training losses are
shaped by `workbench.training.losses`.

    results = store.eval_results()
    for suite, metric in suite_metrics(results):
        frame = per_checkpoint(results, suite, metric)      # newest value per checkpoint, base first
        plots.metric_bars(frame, base=base_of(frame), metric=metric_label(metric))
    plots.metric_over_steps(over_steps(results, "my-run", "bleu"))

A checkpoint is the base model when its name is its own base model's name (how evaluation stores "base"), or
when the result's metadata says it was asked for as "base". An adapter named "run/checkpoint-N" belongs to `run`.
"""

from __future__ import annotations

import pandas as pd

METRIC_LABELS = {
    "bleu": "BLEU",
    "chrf": "chrF",
    "perplexity": "perplexity",
    "response_perplexity": "response perplexity",
    "bits_per_byte": "bits per byte",
}
METRIC_ORDER = ("perplexity", "response_perplexity", "bits_per_byte", "bleu", "chrf")
LOWER_IS_BETTER = {"perplexity", "response_perplexity", "bits_per_byte"}
POINT_COLUMNS = ["id", "suite", "metric", "checkpoint", "run", "step", "value", "signature", "is_base"]
POINT_COLUMNS += ["num_examples", "num_tokens", "created_at"]


def metric_label(metric: str) -> str:
    """How a metric is named on charts ("bleu" -> "BLEU")."""
    return METRIC_LABELS.get(metric, metric)


def run_of(checkpoint: str) -> str:
    """The training run an adapter checkpoint belongs to ("my-run/checkpoint-20" -> "my-run")."""
    return str(checkpoint).split("/", 1)[0]


def _is_base(row: pd.Series) -> bool:
    meta = row.get("metadata") if isinstance(row.get("metadata"), dict) else {}
    return row["checkpoint"] == row.get("base_model") or meta.get("checkpoint") == "base"


def points(results: pd.DataFrame) -> pd.DataFrame:
    """Eval results with `is_base` and `run` added (columns POINT_COLUMNS), oldest first."""
    if results.empty:
        return pd.DataFrame(columns=POINT_COLUMNS)
    frame = results.copy()
    frame["is_base"] = frame.apply(_is_base, axis=1).astype(bool)
    frame["run"] = [None if b else run_of(c) for c, b in zip(frame["checkpoint"], frame["is_base"], strict=True)]
    steps = frame["step"].where(frame["step"].notna(), frame["checkpoint_step"])
    frame["step"] = [None if pd.isna(s) else int(s) for s in steps]
    return frame[POINT_COLUMNS]


def suite_metrics(results: pd.DataFrame) -> list[tuple[str, str]]:
    """The (suite, metric) pairs that have results, metrics in a fixed order (perplexities, then BLEU, chrF)."""
    if results.empty:
        return []
    pairs = results[["suite", "metric"]].drop_duplicates()

    def order(pair: tuple[str, str]) -> tuple[int, str, str]:
        suite, metric = pair
        rank = METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER)
        return (rank, metric, suite)

    return sorted(((s, m) for s, m in pairs.itertuples(index=False)), key=order)


def per_checkpoint(results: pd.DataFrame, suite: str, metric: str) -> pd.DataFrame:
    """The newest result of one suite and metric for each checkpoint: base models first, then adapters by run
    and step (columns POINT_COLUMNS)."""
    frame = points(results)
    frame = frame[(frame["suite"] == suite) & (frame["metric"] == metric)]
    frame = frame.sort_values(["created_at", "id"]).drop_duplicates("checkpoint", keep="last")
    frame = frame.assign(_order=frame["is_base"].map({True: 0, False: 1}), _step=frame["step"].fillna(-1))
    return (
        frame.sort_values(["_order", "run", "_step", "checkpoint"], na_position="first")
        .drop(columns=["_order", "_step"])
        .reset_index(drop=True)
    )


def base_of(frame: pd.DataFrame) -> str | None:
    """The base model's checkpoint name in a per-checkpoint frame, or None when it has none."""
    bases = frame.loc[frame["is_base"], "checkpoint"]
    return str(bases.iloc[0]) if len(bases) else None


def runs(results: pd.DataFrame) -> list[str]:
    """Training runs with at least one evaluated checkpoint that has a step, sorted."""
    frame = points(results)
    stepped = frame[~frame["is_base"] & frame["step"].notna()]
    return sorted(set(stepped["run"]))


def over_steps(results: pd.DataFrame, run: str, metric: str) -> pd.DataFrame:
    """One metric of every suite over the steps of a run, newest result per (suite, step); the base model's
    value is put at step 0 (the model before training) when it was evaluated on the same suite.

    Columns: suite, step, value, checkpoint, signature.
    """
    frame = points(results)
    frame = frame[frame["metric"] == metric]
    mine = frame[(frame["run"] == run) & frame["step"].notna()]
    rows = [mine]
    bases = frame[frame["is_base"] & frame["suite"].isin(set(mine["suite"]))]
    if len(bases):
        bases = bases.sort_values(["created_at", "id"]).drop_duplicates("suite", keep="last").assign(step=0)
        rows.insert(0, bases)
    out = pd.concat(rows) if len(mine) else mine
    out = out.sort_values(["created_at", "id"]).drop_duplicates(["suite", "step"], keep="last")
    out = out.sort_values(["suite", "step"]).reset_index(drop=True)
    return out[["suite", "step", "value", "checkpoint", "signature"]].astype({"step": int})


def example_results(results: pd.DataFrame, metric: str = "bleu") -> pd.DataFrame:
    """Results of one metric that can have per-example outputs, newest first, with a `label` for pickers."""
    frame = points(results)
    frame = frame[frame["metric"] == metric].sort_values(["created_at", "id"], ascending=False)
    labels = [
        f"{s} · {c} · {metric_label(metric)} {v:.2f} (#{i})"
        for s, c, v, i in zip(frame["suite"], frame["checkpoint"], frame["value"], frame["id"], strict=True)
    ]
    return frame.assign(label=labels).reset_index(drop=True)
