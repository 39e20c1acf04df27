"""A training run's event log: `<run>/train_log.jsonl`, one JSON object per line, appended as the run goes.

The training process is the only writer; the UI and the job API read it while the run goes, to draw the
loss chart and show progress. Torch-free. Events (key "event"):

    prepare     the validated datasets (counts, drop reasons), before the model loads
    start       training begins: max_steps, examples, packing, resumed_from, pid
    log         step, epoch, train_loss, learning_rate, tokens_per_s, grad_norm   (every logging step)
    eval        step, val_loss                                                     (every eval step)
    checkpoint  step, name, train_loss, val_loss                                   (a checkpoint folder landed)
    suite       step, checkpoint, results                                          (evaluation suites ran)
    end         status (finished | stopped-early | cancelled | failed), step, final, error

Every event also has "time" (Unix seconds). A reader skips a torn last line: the writer may be killed
mid-write, and the line before it is still complete.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

END_STATUSES = ("finished", "stopped-early", "cancelled", "failed")


class RunLog:
    """Appends events to a run's JSONL log (open/append/close per event, so readers always see whole lines)."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled  # False on every process but the main one of a distributed run

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one event and return it."""
        record = {"event": event, "time": round(time.time(), 3), **fields}
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        return record

    def rewind(self, step: int) -> None:
        """Drop step-bearing events after `step` (a resume repeats those steps); atomically rewrites the file."""
        if not self.enabled or not self.path.is_file():
            return
        kept = [r for r in read_log(self.path) if r.get("event") == "prepare" or r.get("step", 0) <= step]
        kept = [r for r in kept if r.get("event") != "end"]
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for record in kept:
                f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        os.replace(tmp, self.path)


def read_log(path: Path) -> list[dict[str, Any]]:
    """Every complete event of a run log (empty when the file does not exist yet)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a kill; only the last one can be
        if isinstance(record, dict):
            records.append(record)
    return records
