"""Sweeps over any one or two settings: axes parsing, grid shape and seeds, measures on texts with known values,
and a real sweep on the embedded model (greedy and top-k 1 cells repeat themselves; the CLI's JSON).

Run: .venv/bin/python -m pytest -q tests/studio/test_sweep.py
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pandas as pd
import pytest

from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.evaluation.metrics.diversity import repetition_rate
from workbench.generation.settings import GenerationSettings, ReplyStats
from workbench.studio import sweep

MESSAGES = [{"role": "user", "content": "Write one sentence about the sea."}]


def test_axes_parse_validate_and_sort():
    assert sweep.parse_axes(["temperature=1.2,0,0.7", "top-k=50,5"]) == {
        "temperature": [0.0, 0.7, 1.2],
        "top_k": [5, 50],
    }
    assert sweep.parse_axes(["repetition_penalty=1,1.3,1"]) == {"repetition_penalty": [1.0, 1.3]}
    assert sweep.parse_axes(["min-p=0.1,0"]) == {"min_p": [0.0, 0.1]}
    assert sweep.parse_axes(["adapter-strength=1,0,0.5"]) == {"adapter_strength": [0.0, 0.5, 1.0]}
    for specs, needle in (
        ([], "one or two"),
        (["temperature=0", "top_p=1", "top_k=5"], "one or two"),
        (["seed=1,2"], "not a setting to sweep"),
        (["top_p=0,1"], "Top-p must be above 0"),
        (["top_k=2.5"], "whole number"),
        (["min_p=1"], "Min-p must be at least 0"),
        (["adapter_strength=2"], "Adapter strength must be from 0"),
        (["temperature"], "NAME=V1,V2"),
        (["top_p=1", "top_p=0.5"], "given twice"),
    ):
        with pytest.raises(WorkbenchError, match=needle):
            sweep.parse_axes(specs)


class EchoEngine:
    """Plumbing stand-in: answers each request with its settings, so the grid and seeds can be read back."""

    def generate_many(self, requests, progress=None):
        out = []
        for _, s, checkpoint in requests:
            text = f"{checkpoint} t={s.temperature:g} k={s.top_k} p={s.top_p:g} seed={s.seed}"
            out.append((text, ReplyStats(model="m", adapter=None, new_tokens=s.max_new_tokens, seed=s.seed)))
        return out


def test_grid_shape_seeds_and_settings_that_are_not_swept():
    axes = {"top_k": [5, 50], "temperature": [0.5, 1.0, 1.5]}
    out = sweep.run(EchoEngine(), MESSAGES, ["base", "run"], axes, samples=2, max_new_tokens=7, seed=10)
    assert len(out) == 2 * 2 * 3 * 2
    assert list(out.columns[:3]) == ["checkpoint", "top_k", "temperature"]
    assert list(out["seed"][:4]) == [10, 11, 10, 11]  # the same seeds in every cell
    first = out.iloc[0]
    assert first["output"] == f"base t=0.5 k=5 p={GenerationSettings().top_p:g} seed=10"  # top-p: the base's
    table = sweep.measure(out)
    assert len(table) == 12 and set(table["mean_tokens"]) == {7.0}
    with pytest.raises(WorkbenchError, match="keep it at 64"):
        sweep.run(EchoEngine(), MESSAGES, ["a", "b"], {"top_k": list(range(1, 9))}, samples=5)
    with pytest.raises(WorkbenchError, match="at least one checkpoint"):
        sweep.run(EchoEngine(), MESSAGES, [], axes)


def test_measures_on_texts_with_known_values():
    outputs = pd.DataFrame(
        {
            "checkpoint": ["base"] * 4,
            "temperature": [0.0, 0.0, 1.0, 1.0],
            "output": ["the cat sat", "the cat sat", "a b a b a b", "dogs run fast"],
            "new_tokens": [3, 3, 6, 3],
        }
    )
    logprobs = {"the cat sat": -0.5, "a b a b a b": -2.0, "dogs run fast": -1.0}
    table = sweep.measure(outputs, references=["the cat sat"], logprob=lambda t, c: logprobs[t]).set_index(
        "temperature"
    )
    same, mixed = table.loc[0.0], table.loc[1.0]
    assert same["distinct_1"] == pytest.approx(3 / 6) and same["distinct_2"] == pytest.approx(2 / 4)
    assert same["self_bleu"] == pytest.approx(100) and same["repetition"] == 0
    assert same["bleu"] == pytest.approx(100) and same["chrf"] == pytest.approx(100)
    assert same["mean_logprob"] == pytest.approx(-0.5) and mixed["mean_logprob"] == pytest.approx(-1.5)
    # "a b a b a b": 3-grams aba, bab, aba, bab -> 2 unique of 4 -> rep-3 0.5; "dogs run fast": 0
    assert repetition_rate("a b a b a b") == pytest.approx(0.5)
    assert mixed["repetition"] == pytest.approx(0.25)
    assert mixed["distinct_1"] == pytest.approx(5 / 9) and mixed["mean_tokens"] == pytest.approx(4.5)
    assert mixed["bleu"] < 5
    no_refs = sweep.measure(outputs)
    assert "bleu" not in no_refs and no_refs["mean_logprob"].isna().all()


def test_suite_prompts_carry_their_references():
    messages, references = sweep.suite_prompt("self_instruct_user", 0)
    assert messages[-1]["role"] == "user" and "wordy" in messages[-1]["content"]
    assert references and all(r.strip() for r in references)
    with pytest.raises(WorkbenchError, match="no example 'zzz'"):
        sweep.suite_prompt("self_instruct_user", "zzz")


def test_cli_refuses_bad_requests_before_loading_a_model(capsys):
    assert main(["sweep", "--prompt", "hi", "--axis", "top_p=0"]) == 2
    assert "Top-p must be above 0" in capsys.readouterr().err
    assert main(["sweep", "--axis", "temperature=0,1"]) == 2
    assert "--prompt" in capsys.readouterr().err


@pytest.mark.slow
def test_a_real_sweep_repeats_itself_where_sampling_cannot_vary(engine):
    from workbench.generation.tokenprobs import mean_logprob

    axes = {"temperature": [0.0, 1.3], "top_k": [1, 0]}
    out = sweep.run(engine, MESSAGES, ["base"], axes, samples=2, max_new_tokens=8, seed=3)
    assert len(out) == 8 and list(out["seed"].unique()) == [3, 4]
    cell = out.groupby(["temperature", "top_k"])["output"].apply(list)
    assert cell[(0.0, 0)][0] == cell[(0.0, 0)][1]  # greedy
    assert cell[(1.3, 1)][0] == cell[(1.3, 1)][1] == cell[(0.0, 0)][0]  # top-k 1 is greedy at any temperature
    table = sweep.measure(out, logprob=lambda t, c: mean_logprob(engine, MESSAGES, t, c)).set_index(
        ["temperature", "top_k"]
    )
    assert table.loc[(0.0, 0), "self_bleu"] == pytest.approx(100)
    assert table.loc[(0.0, 0), "mean_logprob"] > table.loc[(1.3, 0), "mean_logprob"]  # greedy text is likelier
    assert math.isfinite(table.loc[(1.3, 0), "mean_logprob"])


@pytest.mark.slow
def test_sweep_command_prints_cells_with_bleu_for_a_suite_prompt(wb_env):
    flags = ["--axis", "top_p=0.5,1", "--samples", "2", "--max-new-tokens", "6", "--no-logprob", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "sweep", "--suite", "self_instruct_user", "--example", "0", *flags],
        env=wb_env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["axes"] == {"top_p": [0.5, 1.0]} and data["references"] >= 1
    assert [c["top_p"] for c in data["cells"]] == [0.5, 1.0] and len(data["outputs"]) == 4
    assert all(0 <= c["bleu"] <= 100 and 0 <= c["chrf"] <= 100 and c["mean_logprob"] is None for c in data["cells"])
