"""Training jobs as separate processes: start, watch, cancel and list runs (what the UI's Fine-tune tab uses).

    job = start_training(settings, JobConfig(run="identity", data="train.jsonl"), token=admin_token)
    run_status(settings, "identity")   # RunStatus: preparing/running/finished/..., step, losses, ETA
    loss_curves(settings, "identity")  # {"train": [(step, loss)], "val": [(step, loss)]} for a chart
    cancel_training(settings, "identity", token=admin_token)
    resume_training(settings, "identity", token=admin_token)   # from its last complete checkpoint

A job is `python -m workbench train ...` in its own process (and session, so it outlives a UI restart);
it reports through its run log (`<run>/train_log.jsonl`, see `workbench.training.runlog`), and its
stdout/stderr go to `var/jobs/<run>.log`. This module never imports torch: the UI stays light and
responsive while the job trains.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.config import REPO_ROOT, Settings
from workbench.errors import WorkbenchError
from workbench.safety.names import PART
from workbench.safety.redact import redact
from workbench.training import hparams
from workbench.training.checkpoints import published_steps
from workbench.training.config import JobConfig, RunPaths
from workbench.training.procs import alive as process_alive
from workbench.training.procs import signal_job, start_time
from workbench.training.runlog import END_STATUSES, read_log

ACTIVE = ("preparing", "running")
_PROCS: dict[tuple[str, str], subprocess.Popen] = {}  # (adapters folder, run) -> child, reaped by poll()
_LOCK = threading.Lock()


@dataclass
class RunStatus:
    """Where a run stands, read from its log and its process.

    Attributes:
        run: Run name.
        status: preparing | running | finished | stopped-early | cancelled | failed | interrupted (killed, resumable).
        step: Last logged step.
        max_steps: Total steps (known once training starts).
        train_loss: Last train loss.
        val_loss: Last validation loss.
        val_loss_start: Validation loss before training.
        elapsed_s: Training time so far.
        eta_s: Estimated seconds left.
        tokens_per_s: Last logged training throughput.
        checkpoints: Published checkpoint names.
        adapter: The final adapter's name once the run ended with one.
        error: The failure's sentence, for a failed run.
        pid: The training process, while it runs.
        pid_start: Its start time (see `workbench.training.procs`), so a reused pid is never taken for it.
    """

    run: str
    status: str
    step: int = 0
    max_steps: int | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    val_loss_start: float | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None
    tokens_per_s: float | None = None
    checkpoints: list[str] = field(default_factory=list)
    adapter: str | None = None
    error: str | None = None
    pid: int | None = None
    pid_start: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def for_visitor(self) -> RunStatus:
        """What a visitor may see of the run: its progress and losses, but no process, no line of the job's
        output and no server path (a failure is only named as one; the operator reads the job log)."""
        error = "The run failed; its job log on the server says why." if self.error else None
        return replace(self, pid=None, pid_start=None, error=error)


def _jobs_dir(settings: Settings) -> Path:
    return settings.var_dir / "jobs"


def train_command(config: JobConfig, resume: bool = False) -> list[str]:
    """The `python -m workbench train` command line for a job (every setting as a flag)."""
    cmd = [sys.executable, "-m", "workbench", "train", "--name", config.run, "--quiet"]
    if resume:
        return [*cmd, "--resume"]
    cmd += _store_flags(config) or ["--data", config.data]
    if config.val_data:
        cmd += ["--val", config.val_data]
    if config.base_model:
        cmd += ["--model", config.base_model]
    specs = hparams.declared(JobConfig)
    cmd += hparams.argv({f.name: getattr(config, f.name) for f, _ in specs}, specs)
    for suite in config.eval_suites:
        cmd += ["--eval-suite", suite]
    return cmd


def _store_flags(config: JobConfig) -> list[str]:
    """`--from-votes` or `--from-likes` and every filter of the run's record (`training.filters.argv`): the job
    writes its file from the store itself, as the CLI does. Empty for a run on a file."""
    from workbench.training.filters import argv
    from workbench.training.sources import SOURCES

    for source in SOURCES.values():
        record = getattr(config, source.job) if source.job else None
        if record:
            return [source.flag, *argv(source.filters(**(record.get("filters") or {})))]
    return []


def _child_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    return {**env, **settings.to_env(), "PYTHONUNBUFFERED": "1"}


def start_training(
    settings: Settings, config: JobConfig, *, token: str | None = None, resume: bool = False
) -> subprocess.Popen:
    """Start a training process for `config` (or resume run `config.run`) and return it.

    Raises:
        WorkbenchError: Wrong admin token, a run of that name exists (or, resuming, does not), or it is running.
    """
    from workbench.training.checkpoints import check_run_folder

    settings.check_admin(token)
    key = (str(settings.adapters_dir), config.run)
    with _LOCK:
        if run_status(settings, config.run).active:
            raise WorkbenchError(f"Run {config.run!r} is already training.")
        check_run_folder(RunPaths.of(settings, config.run), resume)
        jobs = _jobs_dir(settings)
        jobs.mkdir(parents=True, exist_ok=True)
        output = open(jobs / f"{config.run}.log", "ab")  # noqa: SIM115 - the child owns it from here on
        try:
            proc = subprocess.Popen(
                train_command(config, resume),
                cwd=REPO_ROOT,
                env=_child_env(settings),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the UI's terminal does not stop the job
            )
        finally:
            output.close()
        _PROCS[key] = proc
        # Reap the child when it exits, so it never lingers as a zombie that looks alive to other readers.
        threading.Thread(target=proc.wait, name=f"reap-{config.run}", daemon=True).start()
        # The start time beside the pid: after a restart the pid may name another process (see procs.py).
        info = {"run": config.run, "pid": proc.pid, "pid_start": start_time(proc.pid), "started": time.time()}
        info["resume"] = resume
        (jobs / f"{config.run}.json").write_text(json.dumps(info), encoding="utf-8")
    return proc


def resume_training(settings: Settings, run: str, *, token: str | None = None) -> subprocess.Popen:
    """Continue an interrupted or cancelled run from its last complete checkpoint, with its saved settings.

    Raises:
        WorkbenchError: Wrong admin token, no such run, a run that already ended, or one that is running.
    """
    from workbench.training.checkpoints import load_job

    settings.check_admin(token)
    paths = RunPaths.of(settings, run)
    config = JobConfig.from_dict(load_job(paths)["config"])
    if config.run != paths.run:
        raise WorkbenchError(f"Run {paths.run!r} has a job.json for another run ({config.run!r}).")
    return start_training(settings, config, token=token, resume=True)


def _pid_alive(settings: Settings, run: str, pid: int | None, pid_start: str | None) -> bool:
    proc = _PROCS.get((str(settings.adapters_dir), run))
    if proc is not None and (pid is None or proc.pid == pid):
        return proc.poll() is None
    return process_alive(pid, pid_start)


_INFOS: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}  # job file -> (inode, size, mtime), its data


def _job_info(settings: Settings, run: str) -> dict[str, Any]:
    path = _jobs_dir(settings) / f"{run}.json"
    try:
        stat = path.stat()
        state = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if path in _INFOS and _INFOS[path][0] == state:  # every open page asks every 2 s: parse it once
            return _INFOS[path][1]
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    _INFOS[path] = (state, info if isinstance(info, dict) else {})
    return _INFOS[path][1]


def _last_error(settings: Settings, run: str) -> str | None:
    try:
        lines = (_jobs_dir(settings) / f"{run}.log").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    errors = [line[len("error: ") :] for line in lines if line.startswith("error: ")]
    return redact(errors[-1] if errors else lines[-1]) if lines else None  # the job's raw output may hold secrets


def run_status(settings: Settings, run: str) -> RunStatus:
    """The run's state from its log, its process and its job output ("unknown" when nothing is known)."""
    paths = RunPaths.of(settings, run)
    run = paths.run
    records = read_log(paths.log_file)
    info = _job_info(settings, run)
    # The newest process we know of: the one the UI started, or a later one that logged its pid (CLI, resume).
    pid, pid_start = info.get("pid"), info.get("pid_start")
    logged = [r for r in records if r["event"] in ("prepare", "start") and r.get("pid")]
    if logged and logged[-1]["time"] >= info.get("started", 0):
        pid, pid_start = logged[-1]["pid"], logged[-1].get("pid_start")
    alive = _pid_alive(settings, run, pid, pid_start)
    status = _status(records, alive, info.get("started"))
    result = RunStatus(run=run, status=status, pid=pid if alive else None, pid_start=pid_start if alive else None)
    result.checkpoints = [f"{run}/checkpoint-{s}" for s in published_steps(paths)]
    _fill_progress(result, records)
    if status == "failed":
        end = records[-1] if records and records[-1]["event"] == "end" else {}
        result.error = end.get("error") or _last_error(settings, run)
    return result


def _status(records: list[dict[str, Any]], alive: bool, job_started: float | None) -> str:
    starts = [i for i, r in enumerate(records) if r["event"] == "prepare"]
    current = records[starts[-1] :] if starts else records  # the events of the newest process
    end = next((r for r in reversed(current) if r["event"] == "end"), None)
    newer_job = job_started and (not records or records[-1]["time"] < job_started)
    if end is not None and not newer_job:
        return end["status"] if end.get("status") in END_STATUSES else "failed"
    if alive:
        return "running" if any(r["event"] == "start" for r in current) and not newer_job else "preparing"
    if newer_job:
        return "failed"  # the job died before it logged anything (bad data, bad flags): see its output
    return "interrupted" if records else "unknown"


def _fill_progress(result: RunStatus, records: list[dict[str, Any]]) -> None:
    start = next((r for r in reversed(records) if r["event"] == "start"), None)
    logs = [r for r in records if r["event"] == "log"]
    evals = [r for r in records if r["event"] == "eval" and r.get("val_loss") is not None]
    end = records[-1] if records and records[-1]["event"] == "end" else None
    if start:
        result.max_steps = start.get("max_steps")
    if logs:
        last = logs[-1]
        result.step, result.train_loss = last["step"], last.get("train_loss")
        result.elapsed_s, result.tokens_per_s = last.get("elapsed_s"), last.get("tokens_per_s")
    if evals:
        result.val_loss = evals[-1]["val_loss"]
        if evals[0]["step"] == 0:
            result.val_loss_start = evals[0]["val_loss"]
    if end and end.get("adapter"):
        result.adapter = end["adapter"]
    if start and logs and result.active and result.max_steps:
        done = logs[-1]["step"] - start.get("step", 0)
        spent = logs[-1]["time"] - start["time"]
        if done > 0:
            result.eta_s = round(spent / done * (result.max_steps - logs[-1]["step"]), 1)


def loss_curves(settings: Settings, run: str) -> dict[str, list[tuple[int, float]]]:
    """(step, loss) points of the train and validation loss so far, for a chart."""
    records = read_log(RunPaths.of(settings, run).log_file)  # the name is checked before any file is read
    train = [(r["step"], r["train_loss"]) for r in records if r["event"] == "log" and r.get("train_loss") is not None]
    val = [(r["step"], r["val_loss"]) for r in records if r["event"] == "eval" and r.get("val_loss") is not None]
    return {"train": train, "val": val}


def cancel_training(settings: Settings, run: str, *, token: str | None = None) -> bool:
    """Ask a running job to stop after its current step (SIGTERM to its process group); returns whether one was
    running.

    Raises:
        WorkbenchError: Wrong admin token.
    """
    settings.check_admin(token)
    status = run_status(settings, run)
    if not status.active or status.pid is None:
        return False
    # The job was started in its own session, so its group holds every process of it (launcher, DDP workers).
    return signal_job(status.pid, status.pid_start, signal.SIGTERM, leader=_job_info(settings, status.run).get("pid"))


def list_runs(settings: Settings) -> list[RunStatus]:
    """Every run with a log or a job record, newest first."""
    names: dict[str, float] = {}
    root = settings.adapters_dir
    if root.is_dir():
        for folder in root.iterdir():
            log = folder / "train_log.jsonl"
            if not folder.name.startswith(".") and not folder.is_symlink() and log.is_file():
                names[folder.name] = log.stat().st_mtime
    jobs = _jobs_dir(settings)
    if jobs.is_dir():
        for info in jobs.glob("*.json"):
            names.setdefault(info.stem, info.stat().st_mtime)
    usable = [n for n in names if PART.match(n)]  # a folder someone made by hand with another name is not a run
    return [run_status(settings, n) for n in sorted(usable, key=names.get, reverse=True)]
