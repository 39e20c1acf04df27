"""What a run reports beyond its own folder: training logs and checkpoints to the store, suites at each save.

`RunHooks(settings, config, log)` gives the two callbacks `run_job` takes. The store is a second copy
of what `train_log.jsonl` holds, for the dashboard: if the database cannot be reached the run goes on
and says so once in its log, instead of failing an hour of training over a chart.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.training.checkpoints import read_meta
from workbench.training.config import JobConfig
from workbench.training.runlog import RunLog

log = logging.getLogger(__name__)
_LOGGED = ("epoch", "train_loss", "val_loss", "learning_rate", "tokens_per_s")


def check_suites(names: tuple[str, ...]) -> None:
    """Raise WorkbenchError for an evaluation suite that does not exist (before any training starts)."""
    if not names:
        return
    from workbench.evaluation.suites import find_suite

    for name in names:
        find_suite(name)


class RunHooks:
    """Store writes and evaluation suites for one run (main process only)."""

    def __init__(self, settings: Settings, config: JobConfig, runlog: RunLog, use_store: bool = True) -> None:
        self.settings = settings
        self.config = config
        self.runlog = runlog
        self._store: Any = None
        self._store_ok = use_store

    def _db(self) -> Any:
        if self._store is None and self._store_ok:
            try:
                from workbench.store import Store

                self._store = Store.open(self.settings)
            except Exception as exc:  # any database trouble: keep training, say so in the run log
                self._store_failed(exc)
        return self._store

    def _store_failed(self, exc: Exception) -> None:
        self._store_ok, self._store = False, None
        self.runlog.write("warning", message=f"The store at {self.settings.db_url} is not written to: {exc}")
        log.warning("training logs are not written to the store: %s", exc)

    def on_log(self, record: dict[str, Any]) -> None:
        """Copy a train/eval record of the run log to the store's training_logs."""
        db = self._db()
        if db is None:
            return
        values = {k: record[k] for k in _LOGGED if record.get(k) is not None}
        try:
            db.add_training_log(self.config.run, int(record["step"]), **values)
        except Exception as exc:
            self._store_failed(exc)

    def on_checkpoint(self, step: int, folder: Path) -> None:
        """Register the checkpoint in the store, then run the job's evaluation suites on it."""
        name = f"{self.config.run}/{folder.name}"
        db = self._db()
        if db is not None:
            meta = read_meta(folder)
            try:
                db.upsert_checkpoint(
                    name, base_model=meta.get("base_model"), step=step, path=str(folder), metadata=meta
                )
            except Exception as exc:
                self._store_failed(exc)
        if self.config.eval_suites:
            self._run_suites(step, name)

    def _run_suites(self, step: int, name: str) -> None:
        from workbench.evaluation.runner import evaluate_checkpoint

        try:
            results = evaluate_checkpoint(self.settings, list(self.config.eval_suites), name, store=self._store_ok)
        except WorkbenchError as exc:
            self.runlog.write("suite", step=step, checkpoint=name, error=str(exc))
            return
        rows = [{"suite": r.suite, "metric": r.metric, "value": r.value} for r in results]
        self.runlog.write("suite", step=step, checkpoint=name, results=rows)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
