"""The evaluation commands as a user runs them: `score` (equal to sacrebleu's CLI), `perplexity` and `eval`
(progress bar, results stored), and their clear errors on bad input. Models: the tiny random Llama.

Run: .venv/bin/python -m pytest -q tests/evaluation/test_eval_cli.py
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.evaluation.test_metrics import sacrebleu_cli
from tests.fixtures.models import make_lora_adapter
from workbench.cli import main
from workbench.config import Settings
from workbench.evaluation.metrics import read_text
from workbench.evaluation.suites import EVALS_DIR
from workbench.store import Store

SHAKESPEARE = EVALS_DIR / "data" / "tinyshakespeare" / "input_head.txt"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("score")
    lines = {
        "ref": ["The cat sat on the mat.", "It is raining today in Paris.", "Café au lait, s'il vous plaît."],
        "ref2": ["A cat was sitting on the mat.", "Today it rains in Paris.", "A white coffee, please."],
        "hyp": ["The cat is on the mat.", "It rains today in Paris!", "Café au lait please."],
        "short": ["Only one line."],
    }
    out = {name: folder / f"{name}.txt" for name in lines}
    for name, text in lines.items():
        out[name].write_text("\n".join(text) + "\n", encoding="utf-8")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1") * 3)
    out["empty"], out["latin1"] = folder / "empty.txt", folder / "latin1.txt"
    return out


@pytest.mark.parametrize("refs", [["ref"], ["ref", "ref2"]])
def test_score_equals_the_sacrebleu_command_line(capsys, files, refs):
    args = ["score", "--hypotheses", str(files["hyp"])]
    for name in refs:
        args += ["--references", str(files[name])]
    code, out, _ = run_cli(capsys, *args, "--metric", "bleu", "--metric", "chrf", "--json", "--sentence")
    ours = json.loads(out)
    theirs = json.loads(sacrebleu_cli([files[n] for n in refs], files["hyp"], "-m", "bleu", "chrf", "-w", "10"))
    assert code == 0 and ours["examples"] == 3 and len(ours["sentences"]) == 3
    for mine, cli in zip(ours["scores"], theirs, strict=True):
        assert (mine["name"], mine["signature"]) == (cli["name"], cli["signature"])
        assert float(f"{mine['score']:.10f}") == cli["score"]
    assert ours["sentence_signatures"]["bleu"].startswith(f"nrefs:{len(refs)}|case:mixed|eff:yes|tok:13a")
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and out.splitlines()[0].startswith(f"BLEU|{theirs[0]['signature']} = ")


@pytest.mark.parametrize(
    ("hyp", "refs", "message"),
    [
        ("empty", ["ref"], "The hypotheses file .*empty.txt is empty, but the references have 3 lines"),
        ("hyp", ["ref", "short"], "The references file .*short.txt has 1 lines but the hypotheses file has 3"),
        ("latin1", ["ref"], "latin1.txt is not UTF-8 text"),
        ("hyp", ["missing"], "There is no file"),
    ],
)
def test_score_refuses_bad_files_in_one_sentence(capsys, files, hyp, refs, message):
    import re

    args = ["score", "--hypotheses", str(files[hyp])]
    for name in refs:
        args += ["--references", str(files.get(name, Path("/nonexistent/missing.txt")))]
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == "" and re.search(message, err) and "Traceback" not in err


@pytest.fixture(scope="module")
def tiny_home(tiny_model_dir, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("cli-home")
    for step, seed in ((5, 3), (15, 4)):
        target = home / "models" / "adapters" / "run" / f"checkpoint-{step}"
        make_lora_adapter(tiny_model_dir, target, tiny_model_dir.name, seed)
    return home


@pytest.fixture
def tiny_env(monkeypatch, tiny_model_dir, tiny_home, tmp_path) -> Settings:
    """A fresh home (so "nothing written" can be checked) sharing the module's adapters."""
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WORKBENCH_ADAPTERS_DIR", str(tiny_home / "models" / "adapters"))
    monkeypatch.setenv("WORKBENCH_MODEL", str(tiny_model_dir))
    return Settings.from_env()


@pytest.mark.slow
def test_perplexity_command_matches_the_library_and_reports_bf16_drift(capsys, tiny_env, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workbench.evaluation.metrics import perplexity_of_text

    text = tmp_path / "t.txt"
    text.write_text(read_text(SHAKESPEARE)[:1500], encoding="utf-8")
    code, out, err = run_cli(capsys, "perplexity", "--text", str(text), "--window", "64", "--batch-size", "3", "--json")
    result = json.loads(out)
    model = AutoModelForCausalLM.from_pretrained(tiny_env.model, dtype=torch.float32).eval()
    expected = perplexity_of_text(model, AutoTokenizer.from_pretrained(tiny_env.model), read_text(text), window=64)
    assert code == 0, err
    assert result["perplexity"] == pytest.approx(expected.perplexity, rel=1e-4)
    assert result["predicted_tokens"] == expected.predicted_tokens and result["bytes"] == len(text.read_bytes())
    assert result["bits_per_byte"] == pytest.approx(expected.bits_per_byte, rel=1e-4)
    assert result["tokens_per_s"] > 0 and result["dtype"] == "float32" and result["checkpoint"] == "base"
    code, out, err = run_cli(
        capsys, "perplexity", "--text", str(text), "--window", "64", "--dtype", "bfloat16", "--json"
    )
    bf16 = json.loads(out)
    assert code == 0, err
    assert bf16["dtype"] == "bfloat16" and bf16["fp32"]["perplexity"] == pytest.approx(expected.perplexity, rel=1e-4)
    assert bf16["drift"]["perplexity_rel"] == pytest.approx(
        abs(bf16["perplexity"] - bf16["fp32"]["perplexity"]) / bf16["fp32"]["perplexity"]
    )
    code, out, _ = run_cli(
        capsys,
        "perplexity",
        "--text",
        str(text),
        "--window",
        "64",
        "--stride",
        "32",
        "--checkpoint",
        "run/checkpoint-5",
    )
    assert code == 0 and "(stride 32)" in out and "[run/checkpoint-5]" in out


def test_perplexity_command_refuses_bad_input_and_writes_nothing(capsys, tiny_env, tmp_path, files):
    for args, message in (
        (["--text", str(files["latin1"])], "latin1.txt is not UTF-8 text"),
        (["--text", str(tmp_path / "nope.txt")], "There is no file"),
        (["--text", str(files["hyp"]), "--window", "1"], "window must be at least 2"),
        (["--text", str(files["hyp"]), "--stride", "600"], "stride must be between 1 and the window"),
        (["--text", str(files["hyp"]), "--checkpoint", "run/nope"], "no adapter called 'run/nope'"),
    ):
        code, out, err = run_cli(capsys, "perplexity", *args)
        assert code == 2 and out == "" and message in err, err
    assert not (tiny_env.home / "var").exists()


@pytest.mark.slow
def test_eval_command_end_to_end_with_progress_bar_and_store(tiny_env, tmp_path):
    (tmp_path / "t.txt").write_text(read_text(SHAKESPEARE)[:1200], encoding="utf-8")
    spec = tmp_path / "tiny_text.yaml"
    spec.write_text("name: tiny_text\nkind: perplexity\ndata: t.txt\nwindow: 64\n", encoding="utf-8")
    env = dict(os.environ)  # tiny_env set WORKBENCH_HOME, WORKBENCH_ADAPTERS_DIR and WORKBENCH_MODEL
    command = [sys.executable, "-m", "workbench", "eval", "--suite", str(spec), "--suite", "identity_heldout"]
    command += ["--all-checkpoints", "run", "--limit", "2", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=EVALS_DIR.parent)
    assert done.returncode == 0, done.stderr
    assert "tiny_text @ run/checkpoint-15" in done.stderr and "100%" in done.stderr  # the tqdm bars
    results = json.loads(done.stdout)["results"]
    keys = {(r["suite"], r["checkpoint"], r["metric"]) for r in results}
    assert len(results) == len(keys) == 3 * (2 + 3)  # base + 2 checkpoints; 2 text metrics + bleu, chrf, ppl
    with Store.open(tiny_env) as store:
        stored = store.eval_results()
        assert len(stored) == len(results)
        steps = stored[stored.metric == "bleu"].sort_values("step", na_position="first").step.tolist()
        assert math.isnan(steps[0])  # the base model has no step
        assert steps[1:] == [5, 15]
        assert len(store.eval_examples(int(stored[stored.metric == "bleu"].id.iloc[0]))) == 2


def test_eval_command_checks_everything_before_loading_a_model(capsys, tiny_env):
    for args, message in (
        ([], "Name a suite with --suite"),
        (["--suite", "nope"], "There is no suite called 'nope'; the suites are: identity_heldout"),
        (["--suite", "shakespeare", "--checkpoint", "run/checkpoint-99"], "no adapter called 'run/checkpoint-99'"),
        (["--suite", "shakespeare", "--all-checkpoints", "other"], "The training run 'other' has no checkpoints"),
        (["--suite", "shakespeare", "--limit", "-1"], "--limit must be 0"),
    ):
        code, out, err = run_cli(capsys, "eval", *args)
        assert code == 2 and out == "" and message in err, err
    assert not (tiny_env.home / "var").exists()
    code, out, _ = run_cli(capsys, "eval", "--list", "--json")
    assert code == 0 and {s["name"] for s in json.loads(out)} >= {"shakespeare", "self_instruct_user"}
