"""No leaks: secrets never reach the run files (train_log.jsonl, workbench.json, job.json) nor the job's error line,
and what a visitor may see of a run holds no process, no job output and no server path."""

import json
import socket

import pytest

from workbench.config import Settings
from workbench.safety.redact import MASK, hide_paths, known_secrets, redact, redact_value
from workbench.training import jobs
from workbench.training.checkpoints import write_json
from workbench.training.config import JobConfig, RunPaths
from workbench.training.hooks import RunHooks
from workbench.training.runlog import RunLog, read_log

PASSWORD = "s3cret-Pa55"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"postgresql+psycopg://wb:{PASSWORD}@db.example:5432/wb refused", PASSWORD),
        (f"connect failed: password={PASSWORD} host=x", PASSWORD),
        ("OPENAI api_key: sk-abcdefghijklmnopqrstuvwx", "sk-abcdefghijklmnopqrstuvwx"),
        ("Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
        ("downloaded with hf_abcdefghijklmnopqrstuvwxyz12", "hf_abcdefghijklmnopqrstuvwxyz12"),
        ("the token='tok-12345' was refused", "tok-12345"),
    ],
)
def test_secrets_are_masked_and_the_rest_kept(text, secret):
    masked = redact(text, [])
    assert secret not in masked and MASK in masked
    assert masked.split()[-1] == text.split()[-1] or secret in text.split()[-1]  # the sentence goes on


def test_environment_secrets_are_masked_wherever_they_appear(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_API_KEY", "plain-value-123")
    monkeypatch.setenv("WORKBENCH_DB_URL", f"postgresql://wb:{PASSWORD}@h/wb")
    assert {"plain-value-123", PASSWORD} <= set(known_secrets())
    assert redact("said plain-value-123 and " + PASSWORD) == f"said {MASK} and {MASK}"
    kept = {"eos_token_id": 2, "max_tokens": 5, "tokens_per_s": 1.5, "note": "no secret here", "api_key_env": "K"}
    assert redact_value(kept) == kept
    assert redact_value({"api_key": "x", "nested": [{"token": "y"}]}) == {"api_key": MASK, "nested": [{"token": MASK}]}


def test_server_paths_are_hidden(tmp_path):
    text = f"cannot read {tmp_path}/models/adapters/run/a.json nor /etc/shadow; 3/4 done"
    shown = hide_paths(text, [tmp_path])
    assert str(tmp_path) not in shown and "/etc" not in shown
    assert "…/models/adapters/run/a.json" in shown and "…/shadow" in shown and "3/4 done" in shown


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_files_never_hold_the_database_password(tmp_path, monkeypatch):
    url = f"postgresql+psycopg://wb:{PASSWORD}@127.0.0.1:{_dead_port()}/wb"
    monkeypatch.setenv("WORKBENCH_DB_URL", url)
    settings = Settings(home=tmp_path, db_url=url)
    paths = RunPaths.of(settings, "leaky")
    log = RunLog(paths.log_file)
    hooks = RunHooks(settings, JobConfig(run="leaky", data=str(tmp_path / "d.jsonl")), log)
    hooks.on_log({"event": "log", "step": 1, "train_loss": 1.0, "time": 0})  # the store is down: a warning
    log.write("end", status="failed", error=f"could not reach {url}")
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    write_json(paths.run_dir / "workbench.json", {"db": url, "api_key": "sk-abcdefghijklmnopqrstuvwx"})
    written = paths.log_file.read_text() + (paths.run_dir / "workbench.json").read_text()
    assert PASSWORD not in written and "sk-abcdefghijklmnopqrstuvwx" not in written
    assert any(r["event"] == "warning" and "The store at postgresql" in r["message"] for r in read_log(paths.log_file))
    assert json.loads((paths.run_dir / "workbench.json").read_text())["db"].startswith("postgresql+psycopg://wb:***@")


def test_a_failed_runs_error_is_redacted_and_a_visitor_sees_no_job_output(tmp_path):
    settings = Settings(home=tmp_path)
    jobs_dir = settings.var_dir / "jobs"
    jobs_dir.mkdir(parents=True)
    (jobs_dir / "broken.json").write_text(json.dumps({"run": "broken", "pid": 0, "started": 1.0}))
    (jobs_dir / "broken.log").write_text(f"Traceback ...\nerror: no store at postgresql://wb:{PASSWORD}@db/wb\n")
    status = jobs.run_status(settings, "broken")
    assert status.status == "failed" and PASSWORD not in status.error and "postgresql://wb:***@db/wb" in status.error
    seen = status.for_visitor()
    assert seen.error == "The run failed; its job log on the server says why."
    assert seen.pid is None and str(tmp_path) not in json.dumps(seen.to_dict())
    assert (seen.run, seen.status, seen.step) == (status.run, status.status, status.step)
