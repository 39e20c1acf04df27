"""A training run's event log: `<run>/train_log.jsonl`, one JSON object per line, appended as the run goes.

The training process is the only writer; the UI and the job API read it while the run goes, to draw the
loss chart and show progress. Torch-free. Events (key "event"):

    prepare     the validated datasets (counts, drop reasons), before the model loads
    start       training begins: max_steps, examples, packing, resumed_from, pid
    log         step, epoch, train_loss, learning_rate, tokens_per_s, grad_norm   (every logging step)
                + reward_margin, reward_accuracy for DPO (chosen minus rejected reward; share chosen wins)
    eval        step, val_loss (+ val_reward_margin, val_reward_accuracy for DPO)  (every eval step)
    checkpoint  step, name, train_loss, val_loss                                   (a checkpoint folder landed)
    suite       step, checkpoint, results                                          (evaluation suites ran)
    end         status (finished | stopped-early | cancelled | failed), step, final, error

Every event also has "time" (Unix seconds). A reader skips a torn last line: the writer may be killed
mid-write, and the line before it is still complete. Secrets (a database URL's password, API keys) are
redacted from every event before it is written (`workbench.safety.redact`).

`read_log` is called every few seconds for every run by the open pages, so it keeps what it parsed per file and
reads only what was appended since (by the file's identity, size and modification time); a file replaced or
rewritten (a resume's rewind) is read again from the start.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.safety.redact import redact_value

END_STATUSES = ("finished", "stopped-early", "cancelled", "failed")


class RunLog:
    """Appends events to a run's JSONL log (open/append/close per event, so readers always see whole lines)."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled  # False on every process but the main one of a distributed run

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one event and return it."""
        record = redact_value({"event": event, "time": round(time.time(), 3), **fields})
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


@dataclass
class _Parsed:
    """What `read_log` knows of one file: its identity and state when read, and the events of its whole lines."""

    ident: tuple[int, int]  # (device, inode): a replaced file (os.replace) is another file
    state: tuple[int, int]  # (size, mtime_ns) at the last read: unchanged means nothing to do
    offset: int = 0  # bytes of whole lines parsed
    seam: bytes = b""  # the bytes just before `offset`, to notice a file rewritten in place
    records: list[dict[str, Any]] = field(default_factory=list)
    partial: list[dict[str, Any]] = field(default_factory=list)  # a last line without its newline, if it parses


_PARSED: dict[str, _Parsed] = {}
_PARSED_LOCK = threading.Lock()
_SEAM = 64


def _parse_lines(data: bytes) -> list[dict[str, Any]]:
    records = []
    for line in data.splitlines():
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue  # a line torn by a kill (then appended to by a resume)
        if isinstance(record, dict):
            records.append(record)
    return records


def _read_new(path: Path, known: _Parsed | None, stat: os.stat_result) -> _Parsed:
    fresh = _Parsed((stat.st_dev, stat.st_ino), (stat.st_size, stat.st_mtime_ns))
    with open(path, "rb") as f:
        if known is not None and known.ident == fresh.ident and stat.st_size >= known.offset:
            f.seek(known.offset - len(known.seam))
            if f.read(len(known.seam)) == known.seam:  # the same bytes as before: only a tail was appended
                fresh.offset, fresh.seam, fresh.records = known.offset, known.seam, list(known.records)
        f.seek(fresh.offset)
        data = f.read()
    cut = data.rfind(b"\n") + 1  # whole lines end here
    if cut:
        fresh.records += _parse_lines(data[:cut])
        fresh.offset += cut
        fresh.seam = (fresh.seam + data[:cut])[-_SEAM:]
    last = data[cut:]
    fresh.partial = _parse_lines(last) if last.strip() else []
    return fresh


def read_log(path: Path) -> list[dict[str, Any]]:
    """Every complete event of a run log (empty when the file does not exist yet).

    The events are shared with later calls (the file is parsed once, then only its new lines): do not change them.
    """
    path = Path(path)
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return []
    key = str(path.absolute())
    with _PARSED_LOCK:
        known = _PARSED.get(key)
        state = (stat.st_size, stat.st_mtime_ns)
        if known is None or known.ident != (stat.st_dev, stat.st_ino) or known.state != state:
            try:
                known = _read_new(path, known, stat)
            except FileNotFoundError:
                return []
            _PARSED[key] = known
        return known.records + known.partial
