"""Job liveness that survives pid reuse, cancel by process group, and a real kill -9 in the middle of a checkpoint
save: every checkpoint the registry lists afterwards loads, the dead run shows as interrupted (also when its pid
now belongs to another process) and resumes to the end."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.fixtures.finetune import identity_file
from workbench.registry import list_adapters
from workbench.training import jobs
from workbench.training.config import JobConfig, RunPaths
from workbench.training.procs import alive, identity, start_time

TOKEN = "liveness-token"


@pytest.fixture
def sleeper():
    """A live process that is not a training job: the process a reused pid would name."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc
    proc.kill()
    proc.wait()


def fake_run(settings, run: str, pid: int, pid_start: str | None) -> None:
    """A run whose newest process, as its log says, is `pid` started at `pid_start`."""
    paths = RunPaths.of(settings, run)
    paths.run_dir.mkdir(parents=True)
    record = {"event": "prepare", "time": time.time(), "pid": pid, "pid_start": pid_start}
    paths.log_file.write_text(json.dumps(record) + "\n")


def test_identity_names_one_process_for_its_lifetime(sleeper):
    me = identity()
    assert me["pid"] == os.getpid() and alive(me["pid"], me["pid_start"])
    started = start_time(sleeper.pid)
    assert started and alive(sleeper.pid, started)
    assert not alive(sleeper.pid, str(int(started) + 1))  # same number, another process
    sleeper.kill()
    sleeper.wait()
    assert not alive(sleeper.pid, started) and start_time(sleeper.pid) is None
    assert not alive(None, None) and not alive(-1, None) and not alive(True, None)


def test_a_reused_pid_is_not_taken_for_a_live_run(tmp_path, sleeper):
    from workbench.config import Settings

    settings = Settings(home=tmp_path, admin_token=TOKEN)
    fake_run(settings, "reused", sleeper.pid, str(int(start_time(sleeper.pid)) - 7))  # the dead trainer's start
    status = jobs.run_status(settings, "reused")
    assert (status.status, status.active, status.pid) == ("interrupted", False, None)
    assert not jobs.cancel_training(settings, "reused", token=TOKEN)
    assert sleeper.poll() is None, "cancel signalled a process that is not the run's"

    fake_run(settings, "live", sleeper.pid, start_time(sleeper.pid))  # the same pid, its own start time
    assert jobs.run_status(settings, "live").active


def test_cancel_signals_the_whole_process_group(tmp_path):
    from workbench.config import Settings

    settings = Settings(home=tmp_path, admin_token=TOKEN)
    code = "import subprocess, time; c = subprocess.Popen(['sleep', '120']); print(c.pid, flush=True); time.sleep(120)"
    leader = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        worker = int(leader.stdout.readline())
        fake_run(settings, "group", leader.pid, start_time(leader.pid))
        assert jobs.run_status(settings, "group").active
        assert jobs.cancel_training(settings, "group", token=TOKEN)
        assert leader.wait(timeout=30) == -signal.SIGTERM
        deadline = time.monotonic() + 30
        while start_time(worker) is not None and time.monotonic() < deadline:  # gone, or a zombie awaiting init
            time.sleep(0.05)
        assert start_time(worker) is None, "the job's child outlived the cancel"
        assert jobs.run_status(settings, "group").status == "interrupted"
    finally:
        if leader.poll() is None:
            os.killpg(leader.pid, signal.SIGKILL)
            leader.wait()


def _saving(paths: RunPaths) -> bool:
    """A checkpoint save in progress: a trainer checkpoint without its state file yet, or a publish underway."""
    if any(p.name.startswith(".checkpoint-") for p in os.scandir(paths.run_dir)):
        return True
    trainer = paths.trainer_dir
    return trainer.is_dir() and any(
        e.name.startswith("checkpoint-") and not os.path.exists(os.path.join(e.path, "trainer_state.json"))
        for e in os.scandir(trainer)
    )


def _wait_until(predicate, seconds: float, step: float = 0.0005) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def _loads(adapters, tiny_model_dir) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    for adapter in adapters:
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        PeftModel.from_pretrained(model, str(adapter.path))  # raises on a torn file


@pytest.mark.slow
def test_kill_9_during_a_checkpoint_save_then_pid_reuse_then_resume(tiny_settings, tiny_model_dir, tmp_path, sleeper):
    settings = dataclasses.replace(tiny_settings, admin_token=TOKEN)
    data = identity_file(tmp_path / "d.jsonl", 40)
    config = JobConfig(
        run="saves",
        data=str(data),
        max_steps=6,
        save_steps=1,
        eval_steps=100,
        max_length=128,
        batch_size=2,
        val_fraction=0,
    )
    paths = RunPaths.of(settings, "saves")
    proc = jobs.start_training(settings, config, token=TOKEN)
    try:
        # Some checkpoints published first, so that the kill lands beside complete ones.
        assert _wait_until(lambda: paths.checkpoint(2).is_dir() or proc.poll() is not None, 240, 0.01)
        caught = _wait_until(lambda: proc.poll() is not None or _saving(paths), 240)
        assert caught and proc.poll() is None, "the run ended before a save could be interrupted"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    listed = [a for a in list_adapters(settings) if a.run == "saves"]
    assert listed and all(a.usable for a in listed), [(a.name, a.reason) for a in listed]
    _loads(listed, tiny_model_dir)
    after = jobs.run_status(settings, "saves")
    assert after.status == "interrupted", (after, proc.pid, proc.returncode, paths.log_file.read_text()[-600:])
    assert len(listed) >= 2 and not paths.checkpoint(6).exists()

    # After a restart the dead trainer's pid belongs to another process: still interrupted, never cancelled.
    records = [json.loads(line) for line in paths.log_file.read_text().splitlines() if line.strip()]
    for record in records:
        if record.get("pid"):
            record["pid"] = sleeper.pid
    paths.log_file.write_text("".join(json.dumps(r) + "\n" for r in records))
    info = jobs._jobs_dir(settings) / "saves.json"
    info.write_text(json.dumps(json.loads(info.read_text()) | {"pid": sleeper.pid}))
    jobs._PROCS.clear()  # as after a restart of the app: only the files are left
    assert jobs.run_status(settings, "saves").status == "interrupted"
    assert not jobs.cancel_training(settings, "saves", token=TOKEN) and sleeper.poll() is None

    resumed = jobs.resume_training(settings, "saves", token=TOKEN)
    assert resumed.wait(timeout=300) == 0
    status = jobs.run_status(settings, "saves")
    assert (status.status, status.step) == ("finished", 6)
    final = [a for a in list_adapters(settings) if a.run == "saves"]
    assert {a.name for a in final} >= {"saves", "saves/checkpoint-6"} and all(a.usable for a in final)
