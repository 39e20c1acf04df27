"""`make gpu-check`'s script, run as its CPU dry run on the smallest built model: every step runs and its figures
say what they should. (On a GPU the same steps run on CUDA in bf16; CI never has one.)"""

from __future__ import annotations

import json
import math

import pytest
import torch

from workbench.bench import gpu_check


def test_the_gpu_check_runs_every_step_on_the_cpu(capsys):
    assert gpu_check.main(["--device", "cpu", "--tiny", "--steps", "2"]) == 0
    figures = json.loads(capsys.readouterr().out)

    assert figures["device"] == "cpu"
    for method in ("sft", "dpo"):
        run = figures[method]
        assert run["steps"] == 2 and run["adapter"] == f"gpu-check-{method}"
        assert math.isfinite(run["loss_first"]) and math.isfinite(run["loss_last"])
        assert run["tokens_per_s"] > 0 and run["peak_rss_mb"] > 0
        assert run["loss_head"] == "chunked"  # the CPU's head; TRL's kernel on CUDA
    assert figures["chat"]["new_tokens"] > 0 and figures["chat"]["tokens_per_s"] > 0
    adapters = figures["adapters"]
    assert adapters["mixed_batch_equals_alone"]
    nll = adapters["reply_nll"]
    assert nll["gpu-check-sft"] != nll["base"] and nll["gpu-check-dpo"] != nll["base"]  # each adapter was applied
    strength = figures["strength"]
    assert strength["zero_equals_base"]  # strength 0 is the base model, teacher-forced
    assert strength["reply_nll"]["1.0"] == nll["gpu-check-sft"] != strength["reply_nll"]["0.5"]
    assert figures["perplexity"]["perplexity"] > 1 and figures["perplexity"]["tokens_per_s"] > 0
    # On the CPU the reference is the same fp32 weights: the comparison's plumbing must find them identical.
    agreement = figures["agreement"]
    assert agreement["positions"] > 0
    assert agreement["argmax_agreement"] == 1.0 and agreement["nll_relative_difference"] == 0.0


@pytest.mark.skipif(torch.cuda.is_available(), reason="the check itself runs where there is a GPU")
def test_without_a_gpu_the_check_skips_in_one_sentence(capsys):
    assert gpu_check.main([]) == 0
    assert capsys.readouterr().out.strip() == gpu_check.NO_GPU
