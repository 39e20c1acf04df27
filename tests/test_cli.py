"""`python -m workbench chat` and `models` as a user runs them: real subprocesses, real model."""

import json
import subprocess
import sys

import pytest

from workbench.cli import main


def run_cli(args, env, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_chat_prompt_json_answers_paris(wb_env):
    done = run_cli(
        [
            "chat",
            "--prompt",
            "What is the capital of France?",
            "--system",
            "Answer in one sentence.",
            "--temperature",
            "0",
            "--max-new-tokens",
            "24",
            "--json",
        ],
        wb_env,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "Paris" in result["reply"]
    assert result["stats"]["finish_reason"] == "eos" and result["stats"]["new_tokens"] > 0
    assert result["stats"]["settings"]["max_new_tokens"] == 24


@pytest.mark.slow
def test_chat_repl_keeps_the_conversation(wb_env):
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "chat", "--system", "Answer in one sentence.", "--temperature", "0"],
        input="What is the capital of France?\n/quit\n",
        env=wb_env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout and "stopped: eos" in done.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["chat", "--prompt", "hi", "--temperature", "-1"], "Temperature must be 0 or more"),
        (["chat", "--prompt", "hi", "--top-p", "0"], "Top-p must be above 0"),
        (["chat", "--prompt", "hi", "--max-new-tokens", "0"], "Max new tokens must be at least 1"),
        (["chat", "--prompt", "  "], "The prompt is empty"),
        (["chat", "--prompt", "hi", "--model", "./no-such-model"], "neither a model folder"),
    ],
)
def test_bad_flags_exit_2_with_one_sentence(args, needle, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.slow
def test_unknown_adapter_and_overlong_requests_exit_2(wb_env):
    done = run_cli(["chat", "--prompt", "hi", "--adapter", "nope"], wb_env)
    assert done.returncode == 2 and "no adapter called 'nope'" in done.stderr and "Traceback" not in done.stderr
    done = run_cli(["chat", "--prompt", "hi", "--max-new-tokens", "9000"], wb_env)
    assert done.returncode == 2 and "context window" in done.stderr


@pytest.mark.slow
def test_models_lists_bases_and_adapters_as_json(wb_env, tmp_path):
    env = {**wb_env, "WORKBENCH_ADAPTERS_DIR": str(tmp_path)}
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "adapter_config.json").write_text("{}")
    done = run_cli(["models", "--json"], env, timeout=60)
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert listing["base"] == "SmolLM2-135M-Instruct" and listing["backend"] == "llamacpp"  # GGUF, no GPU
    assert any(b["selected"] and b["usable"] for b in listing["bases"])
    assert listing["adapters"] == [
        {
            "name": "broken",
            "path": str(tmp_path / "broken"),
            "run": "broken",
            "step": None,
            "base_model": "",
            "usable": False,
            "reason": "adapter_config.json is not a PEFT adapter config.",
        }
    ]
    table = run_cli(["models"], env, timeout=60)
    assert "SmolLM2-135M-Instruct" in table.stdout and "unusable" in table.stdout
