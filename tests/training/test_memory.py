"""The memory estimate before a run (workbench/training/memory.py): the model's shape read right, the parts adding
up, and a run that cannot fit refused in one sentence before anything loads (run_job, `train --validate-only`).

Run: .venv/bin/python -m pytest -q tests/training/test_memory.py
"""

from __future__ import annotations

import pytest

from tests.fixtures.finetune import identity_file
from workbench.errors import WorkbenchError
from workbench.registry import embedded_base
from workbench.training import memory
from workbench.training.config import JobConfig
from workbench.training.memory import GB, ModelShape, check_fits, estimate, model_shape, shape_from_config

SMOLLM2 = ModelShape(vocab=49152, hidden=576, intermediate=1536, layers=30, heads=9, kv_heads=3)


@pytest.mark.parametrize("tied", [True, False])
def test_the_shape_counts_the_parameters_of_a_real_model_and_of_its_lora(tied):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=300,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=8,
        num_key_value_heads=2,
        tie_word_embeddings=tied,
    )
    model = LlamaForCausalLM(config)
    shape = shape_from_config(config.to_dict())
    assert shape.params == sum(p.numel() for p in model.parameters())
    peft = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    assert shape.lora_params(4) == sum(p.numel() for p in peft.parameters() if p.requires_grad)


def test_the_gguf_metadata_gives_the_shape_of_its_conversion(wb_settings, tmp_path):
    import dataclasses

    from workbench.generation.fetch import local_file

    converted = model_shape(embedded_base(), wb_settings)  # the converted folder's config.json
    fresh = dataclasses.replace(wb_settings, models_dir=tmp_path)  # nothing converted: the GGUF's own metadata
    assert memory._gguf_shape(local_file(embedded_base()).source) == converted == model_shape(embedded_base(), fresh)
    assert round(converted.params / 1e6) == 135  # SmolLM2-135M


def test_the_estimate_grows_with_the_batch_and_shrinks_with_checkpointing_and_the_chunked_head():
    base = JobConfig(run="r", data="d.jsonl")  # gradient checkpointing on by default
    need = estimate(SMOLLM2, base)
    assert need.total == need.weights + need.adapter + need.activations + need.loss + need.runtime
    assert need.weights == SMOLLM2.params * 4 and 0.5 * GB < need.weights < 0.6 * GB
    for other in (JobConfig(run="r", data="d.jsonl", batch_size=8), JobConfig(run="r", data="d.jsonl", method="dpo")):
        assert estimate(SMOLLM2, other).activations == 2 * need.activations  # DPO: a chosen and a rejected reply
    kept = estimate(SMOLLM2, JobConfig(run="r", data="d.jsonl", gradient_checkpointing=False))
    assert kept.activations > 10 * need.activations
    assert 5 * GB < kept.activations < 7 * GB  # measured without checkpointing: 5.8 GB (docs/speed.md)
    assert estimate(SMOLLM2, base, head="TRL fused").loss > 4 * need.loss
    assert "Estimated peak memory" in need.summary(16 * 10**9) and "16.0 GB is available" in need.summary(16 * 10**9)


def test_a_run_that_cannot_fit_is_refused_in_one_sentence():
    need = estimate(SMOLLM2, JobConfig(run="r", data="d.jsonl"))
    check_fits(need, None)  # unknown memory: no refusal
    check_fits(need, need.total)
    with pytest.raises(WorkbenchError) as refused:
        check_fits(need, need.total - 1)
    text = str(refused.value)
    assert text.startswith(f"This run needs about {need.total / GB:.1f} GB but only ") and text.count(". ") == 0
    assert "lower the batch size or the max length" in text


def test_available_memory_is_read_from_the_machine():
    free = memory.available_bytes("cpu")
    assert free is not None and free > 0


def test_run_job_refuses_before_loading_and_leaves_no_run(tiny_settings, tmp_path, monkeypatch):
    from workbench.training.trainer import run_job

    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 10**6)
    config = JobConfig(run="too-big", data=str(identity_file(tmp_path / "d.jsonl", 8)), max_steps=1)
    with pytest.raises(WorkbenchError, match=r"^This run needs about .* but only 0\.0 GB is available"):
        run_job(config, tiny_settings, progress=False, echo=lambda _: None, store=False)
    assert not (tiny_settings.adapters_dir / "too-big").exists()
