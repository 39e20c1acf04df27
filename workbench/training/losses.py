"""A training run's losses as a DataFrame (step, train_loss, val_loss) for the loss charts of both UIs.

The store holds the losses of runs that logged to it; every run also writes them to `<run>/train_log.jsonl`,
which `jobs.loss_curves` reads. Pure pandas, torch-free.

    runs = loss_runs(store, settings)                  # runs with a loss to show
    plots.loss_curves(loss_log(store, settings, "my-run"))
    plots.reward_curves(reward_log(settings, "my-dpo-run"))   # a DPO run's reward margin and accuracy
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from workbench.config import Settings
from workbench.training import jobs
from workbench.training.config import RunPaths
from workbench.training.runlog import read_log

REWARD_COLUMNS = ["step", "reward_margin", "reward_accuracy", "val_reward_margin", "val_reward_accuracy"]


def loss_frame(curves: Mapping[str, Sequence[tuple[int, float]]]) -> pd.DataFrame:
    """A loss DataFrame (step, train_loss, val_loss) from `{"train": [(step, loss)], "val": [...]}` points,
    the form `jobs.loss_curves` reads from a run's train_log.jsonl."""
    train = pd.DataFrame(list(curves.get("train") or []), columns=["step", "train_loss"])
    val = pd.DataFrame(list(curves.get("val") or []), columns=["step", "val_loss"])
    train = train.drop_duplicates("step", keep="last")
    val = val.drop_duplicates("step", keep="last")
    merged = train.merge(val, on="step", how="outer").sort_values("step", ignore_index=True)
    return merged.astype({"step": int}) if len(merged) else merged


def loss_runs(store: Any, settings: Settings) -> list[str]:
    """Runs with a loss to show: those that logged to the store and those with a train_log.jsonl on disk."""
    names = set(store.training_runs())
    names.update(r.run for r in jobs.list_runs(settings))
    return sorted(names)


def loss_log(store: Any, settings: Settings, run: str) -> pd.DataFrame:
    """A run's losses (step, train_loss, val_loss): from the store, else from `<run>/train_log.jsonl`."""
    logs = store.training_logs(run)
    if len(logs) and (logs["train_loss"].notna().any() or logs["val_loss"].notna().any()):
        return logs[["step", "train_loss", "val_loss"]].reset_index(drop=True)
    return loss_frame(jobs.loss_curves(settings, run))


def reward_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A DPO run's reward margin and accuracy per step, train and validation (columns: REWARD_COLUMNS), from its
    run-log records; empty for an SFT run."""
    rows: dict[int, dict[str, Any]] = {}
    for record in records:
        if record.get("event") not in ("log", "eval"):
            continue
        values = {k: record[k] for k in REWARD_COLUMNS[1:] if record.get(k) is not None}
        if values:
            rows.setdefault(int(record["step"]), {"step": int(record["step"])}).update(values)
    return pd.DataFrame([rows[s] for s in sorted(rows)], columns=REWARD_COLUMNS)


def reward_log(settings: Settings, run: str) -> pd.DataFrame:
    """`reward_frame` of a run's `train_log.jsonl`."""
    return reward_frame(read_log(RunPaths.of(settings, run).log_file))
