"""Publishing checkpoints atomically, choosing the final adapter, and finding where to resume.

A published checkpoint `<run>/checkpoint-<step>/` is a plain PEFT adapter (adapter_config.json,
adapter_model.safetensors) plus `workbench.json`. It is assembled in a dot-prefixed folder beside it
(the registry ignores those) and renamed into place, so the chat never lists a half-written one: a
kill at any moment leaves the folder either complete or absent (plus, at worst, a hidden leftover that
the next start of the run removes).

The trainer's own checkpoints (optimizer, scheduler, RNG, trainer_state.json) stay under
`<run>/.trainer/`. The Trainer writes trainer_state.json last, so a trainer checkpoint is complete
when that file parses and its adapter weights are whole; `resume_point` picks the newest complete
one and removes anything newer. Torch-free.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.registry import ADAPTER_CONFIG, ADAPTER_WEIGHTS, CHAT_TEMPLATE_FILE, RUN_META, inspect_adapter
from workbench.safety.redact import redact_value
from workbench.training.config import RunPaths
from workbench.training.runlog import read_log

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"


def write_json(path: Path, data: Any) -> None:
    """Write JSON to `path` through a temporary file and a rename, with secrets redacted (run files are read by
    the UI and travel with adapters)."""
    tmp = path.with_name(f".{path.name}.tmp")
    text = json.dumps(redact_value(data), indent=2, ensure_ascii=False, default=str)
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _adapter_config(source: Path, base_name: str) -> dict[str, Any]:
    config = json.loads((source / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    # The registry matches adapters to bases by this field; the trainer records the cache folder's path.
    config["base_model_name_or_path"] = base_name
    return config


def publish_checkpoint(
    paths: RunPaths, step: int, source: Path, base_name: str, meta: dict[str, Any], chat_template: str | None = None
) -> Path:
    """Copy the adapter of trainer checkpoint `source` to `<run>/checkpoint-<step>/` with its workbench.json
    (and the chat template the run declared for a base model, when it did).

    Returns the published folder. Publishing a step that is already published leaves it as it is.
    """
    target = paths.checkpoint(step)
    if target.is_dir():
        return target
    tmp = paths.run_dir / f".{target.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copyfile(source / ADAPTER_WEIGHTS, tmp / ADAPTER_WEIGHTS)
    write_json(tmp / ADAPTER_CONFIG, _adapter_config(source, base_name))
    write_json(tmp / RUN_META, meta)
    if chat_template is not None:
        (tmp / CHAT_TEMPLATE_FILE).write_text(chat_template, encoding="utf-8")
    os.rename(tmp, target)
    return target


def publish_final(paths: RunPaths, source: Path, meta: dict[str, Any]) -> None:
    """Make the published checkpoint `source` the run's final adapter at `<run>/` itself.

    A folder that already holds checkpoints cannot be swapped in one rename, so each file is renamed
    into place from a hidden temporary, the weights last: until they land the registry either does not
    list `<run>` or lists it as unusable, never as a usable half-written adapter.
    """
    run = paths.run_dir
    for name in (RUN_META, CHAT_TEMPLATE_FILE, ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        if name == RUN_META:
            write_json(run / RUN_META, meta)
            continue
        if not (source / name).is_file():  # only a base model's run declares a chat template
            continue
        tmp = run / f".{name}.tmp"
        shutil.copyfile(source / name, tmp)
        os.replace(tmp, run / name)


def published_steps(paths: RunPaths) -> list[int]:
    """Steps of the published checkpoints, ascending."""
    if not paths.run_dir.is_dir():
        return []
    steps = [int(m.group(1)) for p in paths.run_dir.iterdir() if p.is_dir() and (m := CHECKPOINT.match(p.name))]
    return sorted(steps)


def read_meta(folder: Path) -> dict[str, Any]:
    """A checkpoint's workbench.json ({} when missing or unreadable)."""
    try:
        return json.loads((folder / RUN_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def choose_final(paths: RunPaths, use_val_loss: bool) -> Path | None:
    """The published checkpoint to serve as the run's adapter: lowest validation loss, else the newest."""
    steps = published_steps(paths)
    if not steps:
        return None
    if use_val_loss:
        scored = [
            (meta["val_loss"], step)
            for step in steps
            if (meta := read_meta(paths.checkpoint(step))).get("val_loss") is not None
        ]
        if scored:
            return paths.checkpoint(min(scored)[1])
    return paths.checkpoint(steps[-1])


def _trainer_checkpoint_complete(folder: Path) -> bool:
    try:
        json.loads((folder / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return inspect_adapter(folder, folder.name).usable


def resume_point(paths: RunPaths) -> Path | None:
    """The newest complete trainer checkpoint of a run, removing incomplete newer ones and stale temporaries."""
    for leftover in paths.run_dir.glob(".*.tmp"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
    if not paths.trainer_dir.is_dir():
        return None
    found = sorted(
        ((int(m.group(1)), p) for p in paths.trainer_dir.iterdir() if p.is_dir() and (m := CHECKPOINT.match(p.name))),
        reverse=True,
    )
    for _, folder in found:
        if _trainer_checkpoint_complete(folder):
            return folder
        shutil.rmtree(folder, ignore_errors=True)  # torn by a kill during the save
    return None


def checkpoint_step(folder: Path) -> int:
    """The step number in a `checkpoint-<step>` folder name."""
    match = CHECKPOINT.match(Path(folder).name)
    if match is None:
        raise ValueError(f"{folder} is not a checkpoint folder")
    return int(match.group(1))


def check_run_folder(paths: RunPaths, resume: bool) -> None:
    """Refuse to start over an existing run, or to resume one that does not exist."""
    exists = paths.run_dir.exists() and any(paths.run_dir.iterdir())
    if exists and not resume:
        raise WorkbenchError(
            f"A run called {paths.run!r} already exists in {paths.run_dir.parent}; "
            "resume it with --resume or choose another name."
        )
    if resume and not paths.job_file.is_file():
        raise WorkbenchError(f"There is no run called {paths.run!r} to resume in {paths.run_dir.parent}.")
    ends = [r for r in read_log(paths.log_file) if r["event"] in ("prepare", "end")]
    if resume and ends and ends[-1]["event"] == "end" and ends[-1].get("status") in ("finished", "stopped-early"):
        raise WorkbenchError(f"Run {paths.run!r} already ended ({ends[-1]['status']} at step {ends[-1].get('step')}).")


def load_job(paths: RunPaths) -> dict[str, Any]:
    """The job.json a run wrote when it started (its config, base model and dataset fingerprints)."""
    if not paths.job_file.is_file():
        raise WorkbenchError(f"There is no run called {paths.run!r} to resume in {paths.run_dir.parent}.")
    try:
        return json.loads(paths.job_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise WorkbenchError(f"Run {paths.run!r} has no readable job.json, so it cannot be resumed.") from None
