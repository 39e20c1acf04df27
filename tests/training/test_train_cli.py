"""`python -m workbench train`: one clear sentence and exit code 2 on bad input, the validation report, the JSON
summary, and the same command under torchrun with 2 CPU processes (DDP over gloo) giving a loadable adapter.

Run: .venv/bin/python -m pytest -q tests/training/test_train_cli.py
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.fixtures.finetune import ROOT, identity_file
from tests.fixtures.servers import free_port
from workbench.cli import main
from workbench.training.runlog import read_log


@pytest.fixture
def cli(tiny_env, monkeypatch, capsys):
    """Run `python -m workbench ARGS` in this process against the tiny model; returns (code, stdout, stderr)."""
    for key, value in tiny_env.items():
        if key.startswith("WORKBENCH_"):
            monkeypatch.setenv(key, value)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_bad_input_exits_2_with_one_sentence(cli, tiny_settings, tmp_path):
    data = identity_file(tmp_path / "d.jsonl", 5)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"messages": [{"role": "user", "content": "Hi"}]}\nnot json\n', encoding="utf-8")
    (tiny_settings.adapters_dir / "taken").mkdir(parents=True)
    (tiny_settings.adapters_dir / "taken" / "train_log.jsonl").write_text("")
    cases = [
        (["--name", "a"], "Name a training file with --data"),
        (["--name", "a", "--data", str(tmp_path / "missing.jsonl")], "There is no dataset file at"),
        (["--name", "a", "--data", str(broken)], "broken.jsonl has no usable example: line 1: the last message is"),
        (["--name", "taken", "--data", str(data)], "A run called 'taken' already exists"),
        (["--name", "ghost", "--resume"], "There is no run called 'ghost' to resume"),
        (["--name", "taken", "--resume", "--learning-rate", "1e-3"], "leave out --learning-rate"),
        (["--name", "a", "--data", str(data), "--lora-dropout", "1.5"], "LoRA dropout must be below 1"),
        (["--name", "bad/name", "--data", str(data)], "is not usable"),
        (["--name", "a", "--data", str(data), "--eval-suite", "no-such-suite"], "no suite called 'no-such-suite'"),
    ]
    for args, expected in cases:
        code, out, err = cli("train", *args)
        assert code == 2, (args, out, err)
        assert err.startswith("error: ") and expected in err and err.count("\n") == 1, (args, err)
    assert not (tiny_settings.adapters_dir / "a").exists()


def test_validate_only_prints_every_problem(cli, tmp_path):
    data = identity_file(tmp_path / "d.jsonl", 6)
    with open(data, "a", encoding="utf-8") as f:
        f.write('{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}]}\n{bad\n')
    code, out, err = cli("train", "--name", "v", "--data", str(data), "--validate-only", "--max-length", "200")
    assert code == 0
    assert "d.jsonl: chat shape (JSONL), 8 records, " in out
    assert "line 7: message 2 (assistant) has empty content" in out and "line 8: not valid JSON" in out
    assert "Estimated peak memory " in out and "(chunked head)" in out and " GB is available." in out
    code, out, err = cli("train", "--name", "v", "--data", str(data), "--validate-only", "--json")
    report = json.loads(out)
    assert [(p["line"], p["kind"]) for p in report["train"]["problems"]] == [(7, "empty-content"), (8, "bad-json")]
    assert report["train_examples"] + report["validation_examples"] == 6
    assert "d.jsonl: chat shape" in err  # the human report goes to stderr when stdout is JSON
    code, out, err = cli("train", "--name", "v", "--data", str(data), "--validate-only", "--max-length", "40")
    assert code == 2 and "line 1: " in out and "longer than the maximum of 40" in out  # the report, then the refusal
    assert err.startswith("error: d.jsonl has no usable example: line 1: ")


def test_validate_only_refuses_a_run_that_cannot_fit_the_memory(cli, tmp_path, monkeypatch):
    from workbench.training import memory

    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 10**8)
    data = identity_file(tmp_path / "d.jsonl", 6)
    code, out, err = cli("train", "--name", "v", "--data", str(data), "--validate-only", "--batch-size", "64")
    assert code == 2 and "d.jsonl: chat shape" in out  # the report, then the refusal
    assert err.startswith("error: This run needs about ") and "but only 0.1 GB is available" in err
    assert err.count("\n") == 1


@pytest.mark.slow
def test_two_process_ddp_run_on_cpu_gives_a_loadable_adapter(tiny_env, tiny_settings, tiny_model_dir, tmp_path):
    data = identity_file(tmp_path / "d.jsonl", 40)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        "-m",
        "workbench",
        "train",
        "--data",
        str(data),
        "--name",
        "ddp",
        "--max-steps",
        "3",
        "--max-length",
        "128",
        "--batch-size",
        "2",
        "--save-steps",
        "3",
        "--eval-steps",
        "3",
        "--quiet",
        "--json",
    ]
    done = subprocess.run(cmd, cwd=ROOT, env=tiny_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = done.stdout.strip().splitlines()  # only the main process reports
    summary = json.loads(line)
    assert summary["status"] == "finished" and summary["step"] == 3 and summary["adapter"] == "ddp"
    start = next(r for r in read_log(tiny_settings.adapters_dir / "ddp" / "train_log.jsonl") if r["event"] == "start")
    assert start["world_size"] == 2
    assert done.stderr.count("d.jsonl: chat shape") == 1  # one validation report, not one per process

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(tiny_settings.adapters_dir / "ddp")
    )
    assert any("lora_A" in name for name, _ in model.named_parameters())


def test_make_finetune_demo_uses_the_demo_settings_the_ui_starts_from():
    import shlex

    from workbench.cli import build_parser
    from workbench.cli.train import job_config
    from workbench.training.config import DEMO_SETTINGS

    text = (ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(x for x in text.splitlines() if "-m workbench train" in x)
    argv = shlex.split(line.split("-m workbench ", 1)[1].replace("$(DEMO_RUN)", "demo"))
    config = job_config(build_parser().parse_args(argv), settings=None)
    assert {key: getattr(config, key) for key in DEMO_SETTINGS} == DEMO_SETTINGS
    assert config.data.endswith("data/fastchat_identity/train.jsonl") and not config.val_data
