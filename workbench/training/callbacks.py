"""Trainer callbacks of a Workbench run: log events, publish checkpoints, progress bar, cancellation, suites.

One `RunCallback` per training process. Under DDP every rank gets one, but only the main process
(`state.is_world_process_zero`) writes logs, publishes checkpoints and draws the progress bar.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from workbench.training.checkpoints import publish_checkpoint
from workbench.training.config import RunPaths
from workbench.training.dpo import preference_metrics
from workbench.training.runlog import RunLog


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def losses_at(log_history: list[dict[str, Any]], step: int) -> tuple[float | None, float | None]:
    """The latest train loss and validation loss logged at or before `step`."""
    train = val = None
    for entry in log_history:
        if entry.get("step", 0) > step:
            continue
        if "loss" in entry:
            train = _finite(entry["loss"])
        if "eval_loss" in entry:
            val = _finite(entry["eval_loss"])
    return train, val


@dataclass
class RunContext:
    """What the callback needs to know about the run (filled by the training entry point).

    Attributes:
        paths: The run's folders.
        base_name: The base model's name, recorded in every adapter.
        meta: The run-wide part of every workbench.json (datasets, counts, hyperparameters).
        log: The run's event log (disabled on non-main processes).
        wall_offset: Training seconds spent before this process started (a resumed run).
        cancel: Set from a signal handler or another thread to stop after the current step.
        on_checkpoint: Called with (step, published folder) after a checkpoint lands (suites, store).
        on_log: Called with each train/eval record (the store's training log).
        progress: Draw a tqdm bar on stderr.
        chat_template: The template declared for a base model without one, saved beside every adapter.
    """

    paths: RunPaths
    base_name: str
    meta: dict[str, Any]
    log: RunLog
    wall_offset: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event)
    on_checkpoint: Callable[[int, Path], None] | None = None
    on_log: Callable[[dict[str, Any]], None] | None = None
    progress: bool = True
    chat_template: str | None = None
    start_info: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return self.wall_offset + time.monotonic() - self.started

    def checkpoint_meta(self, step: int, max_steps: int, epoch: float | None, log_history: list[dict]) -> dict:
        """workbench.json for the checkpoint at `step`."""
        train_loss, val_loss = losses_at(log_history, step)
        return {
            **self.meta,
            "step": step,
            "max_steps": max_steps,
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "wall_time_s": round(self.elapsed(), 1),
            "created_at": time.time(),
        }


class RunCallback(TrainerCallback):
    """Logs, publishes and reports a run's progress; stops it when `ctx.cancel` is set."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.bar: Any = None
        self._step_began = 0.0
        self._busy = 0.0  # seconds inside training steps since the last train log (eval/save excluded)
        self._tokens = None
        self._postfix: dict[str, str] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.ctx.log.write("start", step=state.global_step, max_steps=state.max_steps, **self.ctx.start_info)
        if state.is_world_process_zero and self.ctx.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=self.ctx.paths.run, unit="step")

    def on_step_begin(self, args, state, control, **kwargs):
        self._step_began = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self._busy += time.perf_counter() - self._step_began
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
        if self.ctx.cancel.is_set():
            control.should_training_stop = True
            control.should_save = False  # the last complete checkpoint stays the resume point

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        step, epoch = state.global_step, _finite(state.epoch)
        if "loss" in logs:
            tokens = _finite(logs.get("num_tokens"))
            rate = None
            if tokens is not None and self._tokens is not None and self._busy > 0 and tokens >= self._tokens:
                rate = (tokens - self._tokens) / self._busy
            elif tokens is not None and self._busy > 0:
                rate = tokens / self._busy  # first log of this process: TRL counts tokens from its start
            self._tokens, self._busy = tokens, 0.0
            record = self.ctx.log.write(
                "log",
                step=step,
                epoch=epoch,
                train_loss=_finite(logs["loss"]),
                learning_rate=_finite(logs.get("learning_rate")),
                tokens_per_s=round(rate, 1) if rate else None,
                grad_norm=_finite(logs.get("grad_norm")),
                elapsed_s=round(self.ctx.elapsed(), 1),
                **{k: _finite(v) for k, v in preference_metrics(logs).items()},
            )
            if self.bar is not None:
                self._postfix["loss"] = f"{logs['loss']:.3f}"
                self.bar.set_postfix(self._postfix, refresh=False)
        elif "eval_loss" in logs:
            record = self.ctx.log.write(
                "eval",
                step=step,
                epoch=epoch,
                val_loss=_finite(logs["eval_loss"]),
                elapsed_s=round(self.ctx.elapsed(), 1),
                **{f"val_{k}": _finite(v) for k, v in preference_metrics(logs, "eval_").items()},
            )
            if self.bar is not None:
                self._postfix["val_loss"] = f"{logs['eval_loss']:.3f}"
                self.bar.set_postfix(self._postfix, refresh=False)
        else:
            return
        if self.ctx.on_log is not None:
            self.ctx.on_log(record)

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        step = state.global_step
        source = Path(args.output_dir) / f"checkpoint-{step}"
        meta = self.ctx.checkpoint_meta(step, state.max_steps, _finite(state.epoch), state.log_history)
        folder = publish_checkpoint(self.ctx.paths, step, source, self.ctx.base_name, meta, self.ctx.chat_template)
        self.ctx.log.write(
            "checkpoint",
            step=step,
            name=f"{self.ctx.paths.run}/{folder.name}",
            train_loss=meta["train_loss"],
            val_loss=meta["val_loss"],
            elapsed_s=meta["wall_time_s"],
        )
        if self.ctx.on_checkpoint is not None:
            self.ctx.on_checkpoint(step, folder)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
