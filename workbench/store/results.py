"""Automatic measurements in the store: evaluation results with their per-example outputs, and training logs.

Evaluation suites call `add_eval_result` once per metric (and `add_eval_examples` with the outputs behind
it); fine-tuning jobs call `add_training_log(run, step, loss=..., eval_loss=..., learning_rate=...)` as they
log, with Hugging Face Trainer's names or ours. Values logged separately for one step are merged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select

from workbench.errors import WorkbenchError
from workbench.store.records import check_name, normalize_settings
from workbench.store.schema import Checkpoint, EvalExample, EvalResult, TrainingLog

# Trainer's log keys -> our columns; anything else a job logs is kept in the row's metadata.
TRAINING_ALIASES = {
    "loss": "train_loss",
    "train_loss": "train_loss",
    "eval_loss": "val_loss",
    "val_loss": "val_loss",
    "learning_rate": "learning_rate",
    "lr": "learning_rate",
    "epoch": "epoch",
    "tokens_per_s": "tokens_per_s",
    "tokens_per_second": "tokens_per_s",
}
TRAINING_COLUMNS = [
    "run",
    "step",
    "epoch",
    "train_loss",
    "val_loss",
    "learning_rate",
    "tokens_per_s",
    "metadata",
    "time",
]
EVAL_COLUMNS = [
    "id",
    "suite",
    "checkpoint",
    "base_model",
    "checkpoint_step",
    "step",
    "metric",
    "value",
    "signature",
    "num_examples",
    "num_tokens",
    "settings",
    "model_hash",
    "dataset_hash",
    "metadata",
    "created_at",
]
EXAMPLE_COLUMNS = ["example_index", "prompt", "hypothesis", "references", "score", "metadata"]


def _finite(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise WorkbenchError(f"{name} must be a number, not {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise WorkbenchError(f"{name} must be a number, not {value!r}.") from None
    return number if math.isfinite(number) else None  # a diverged loss is recorded as missing


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN and infinities are not JSON, and PostgreSQL's json type refuses them
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


class ResultsMixin:
    """Evaluation results and examples, training logs."""

    def add_eval_result(
        self,
        suite: str,
        checkpoint: str,
        metric: str,
        value: float,
        *,
        step: int | None = None,
        signature: str | None = None,
        num_examples: int | None = None,
        num_tokens: int | None = None,
        settings: Mapping[str, Any] | None = None,
        model_hash: str | None = None,
        dataset_hash: str | None = None,
        base_model: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        created_at: float | None = None,
    ) -> int:
        """Record one metric of one suite on one checkpoint (created when new); returns the result id.

        Args:
            suite: Evaluation suite name.
            checkpoint: Checkpoint name (use the base model's name for the base model).
            metric: "bleu", "chrf", "perplexity", ...
            value: The score.
            step: Training step of the checkpoint, for curves over a run.
            signature: sacrebleu's signature string, so the score can be reproduced and compared.
            num_examples: Examples scored.
            num_tokens: Tokens scored (e.g. for perplexity).
            settings: Generation settings used (validated like any GenerationSettings).
            model_hash: Fingerprint of the weights evaluated.
            dataset_hash: Fingerprint of the suite's data.
            base_model: Recorded on the checkpoint when it is created here.
            metadata: Anything else (JSON).
            created_at: Epoch seconds; now when not given.
        """
        suite, metric = check_name("suite", suite), check_name("metric", metric, 100)
        number = _finite(f"The value of {metric}", value)
        if number is None:
            raise WorkbenchError(f"The value of {metric} must be a finite number, not {value!r}.")
        row = EvalResult(
            suite=suite,
            step=step,
            metric=metric,
            value=number,
            signature=signature,
            num_examples=num_examples,
            num_tokens=num_tokens,
            settings=normalize_settings(settings) if settings is not None else None,
            model_hash=model_hash,
            dataset_hash=dataset_hash,
            meta=_json_safe(dict(metadata)) if metadata else None,
        )
        return self._insert_for_checkpoint(row, checkpoint, base_model, created_at)

    def add_eval_examples(self, result_id: int, examples: Iterable[Mapping[str, Any]]) -> int:
        """Attach per-example outputs to a result; returns how many were stored.

        Each example is a dict with `prompt`, `hypothesis`, `references` (a list or one string), `score`
        (the sentence score) and optionally `index` (default: its position); other keys go to metadata.
        """
        known = {"index", "example_index", "prompt", "hypothesis", "references", "reference", "score"}
        rows = []
        for i, ex in enumerate(examples):
            if not isinstance(ex, Mapping):
                raise WorkbenchError(f"Example {i + 1} must be an object.")
            refs = ex.get("references", ex.get("reference"))
            extra = {k: v for k, v in ex.items() if k not in known}
            rows.append(
                EvalExample(
                    result_id=result_id,
                    example_index=int(ex.get("index", ex.get("example_index", i))),
                    prompt=ex.get("prompt"),
                    hypothesis=ex.get("hypothesis"),
                    references=[refs] if isinstance(refs, str) else (list(refs) if refs is not None else None),
                    score=_finite(f"The score of example {i + 1}", ex.get("score")),
                    meta=_json_safe(extra) or None,
                )
            )
        with self._write() as s:
            if s.get(EvalResult, result_id) is None:
                raise WorkbenchError(f"There is no evaluation result with id {result_id!r}.")
            s.add_all(rows)
        return len(rows)

    def eval_results(self, *, suite: str | None = None, checkpoint: str | None = None, metric: str | None = None):
        """Evaluation results as a DataFrame (columns: EVAL_COLUMNS), oldest first, optionally filtered."""
        import pandas as pd

        query = select(EvalResult, Checkpoint).join(Checkpoint, Checkpoint.id == EvalResult.checkpoint_id)
        for column, value in ((EvalResult.suite, suite), (Checkpoint.name, checkpoint), (EvalResult.metric, metric)):
            if value is not None:
                query = query.where(column == value)
        with self._read() as s:
            rows = [
                {
                    "id": r.id,
                    "suite": r.suite,
                    "checkpoint": c.name,
                    "base_model": c.base_model,
                    "checkpoint_step": c.step,
                    "step": r.step,
                    "metric": r.metric,
                    "value": r.value,
                    "signature": r.signature,
                    "num_examples": r.num_examples,
                    "num_tokens": r.num_tokens,
                    "settings": r.settings,
                    "model_hash": r.model_hash,
                    "dataset_hash": r.dataset_hash,
                    "metadata": r.meta or {},
                    "created_at": r.created_at,
                }
                for r, c in s.execute(query.order_by(EvalResult.created_at, EvalResult.id))
            ]
        return pd.DataFrame(rows, columns=EVAL_COLUMNS)

    def eval_examples(self, result_id: int):
        """The per-example outputs of one result, by example index (columns: EXAMPLE_COLUMNS)."""
        import pandas as pd

        with self._read() as s:
            rows = [
                {
                    "example_index": e.example_index,
                    "prompt": e.prompt,
                    "hypothesis": e.hypothesis,
                    "references": e.references,
                    "score": e.score,
                    "metadata": e.meta or {},
                }
                for e in s.scalars(
                    select(EvalExample).where(EvalExample.result_id == result_id).order_by(EvalExample.example_index)
                )
            ]
        return pd.DataFrame(rows, columns=EXAMPLE_COLUMNS)

    def delete_eval_results(
        self, *, suite: str | None = None, checkpoint: str | None = None, token: str | None = None
    ) -> int:
        """Delete evaluation results (and their examples) of a suite and/or checkpoint (admin); returns how many."""
        self.check_admin(token)
        if suite is None and checkpoint is None:
            raise WorkbenchError("Name a suite or a checkpoint whose evaluation results to delete.")
        ids = select(EvalResult.id).join(Checkpoint, Checkpoint.id == EvalResult.checkpoint_id)
        if suite is not None:
            ids = ids.where(EvalResult.suite == suite)
        if checkpoint is not None:
            ids = ids.where(Checkpoint.name == checkpoint)
        with self._write() as s:
            targets = list(s.scalars(ids))
            s.execute(delete(EvalExample).where(EvalExample.result_id.in_(targets)))
            return s.execute(delete(EvalResult).where(EvalResult.id.in_(targets))).rowcount

    # --- training logs ------------------------------------------------------------------------------------

    def add_training_log(self, run: str, step: int, **values: Any) -> None:
        """Record the values a training run logged at `step` (merged with what that step already has).

        Known keys: epoch, train_loss (or loss), val_loss (or eval_loss), learning_rate (or lr),
        tokens_per_s; anything else is kept in the row's metadata. Non-finite numbers are stored as missing.
        """
        run = check_name("run", run)
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise WorkbenchError(f"A training step must be a whole number, 0 or more, not {step!r}.")
        columns: dict[str, float | None] = {}
        extra: dict[str, Any] = {}
        for key, value in values.items():
            if key in TRAINING_ALIASES:
                columns[TRAINING_ALIASES[key]] = _finite(key, value)
            else:
                extra[key] = _json_safe(value)
        with self._write() as s:
            row = s.scalar(select(TrainingLog).where(TrainingLog.run == run, TrainingLog.step == step))
            if row is None:
                row = TrainingLog(run=run, step=step)
                s.add(row)
            for key, value in columns.items():
                if value is not None or getattr(row, key) is None:
                    setattr(row, key, value)
            if extra:
                row.meta = {**(row.meta or {}), **extra}

    def training_logs(self, run: str | None = None):
        """Training logs by run and step as a DataFrame (columns: TRAINING_COLUMNS; time is UTC)."""
        import pandas as pd

        query = select(TrainingLog).order_by(TrainingLog.run, TrainingLog.step)
        if run is not None:
            query = query.where(TrainingLog.run == run)
        with self._read() as s:
            rows = [
                {
                    **{c: getattr(r, c) for c in TRAINING_COLUMNS[:7]},
                    "metadata": r.meta or {},
                    "time": r.created_at,
                }
                for r in s.scalars(query)
            ]
        frame = pd.DataFrame(rows, columns=TRAINING_COLUMNS)
        frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
        return frame

    def training_runs(self) -> list[str]:
        """Names of the runs that logged anything, sorted."""
        with self._read() as s:
            return sorted(s.scalars(select(TrainingLog.run).distinct()))

    def delete_training_run(self, run: str, *, token: str | None = None) -> int:
        """Delete every log row of a run (admin); returns how many."""
        self.check_admin(token)
        with self._write() as s:
            return s.execute(delete(TrainingLog).where(TrainingLog.run == run)).rowcount
