"""The store's preference export is what TRL's DPOTrainer reads: export decisive votes as conversational
prompt/chosen/rejected pairs, load the file with `datasets`, and train one DPO step on a tiny model.

Run: .venv/bin/python -m pytest -q tests/training/test_preferences_dpo.py   (one CPU step on a 2-layer model)
"""

from __future__ import annotations

import math

import pytest


@pytest.mark.slow
def test_exported_preferences_train_one_dpo_step(tiny_model_dir, tmp_path):
    from workbench.store import Store

    with Store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        prompt = [{"role": "user", "content": "Say hello."}]
        kind = store.add_generation("kind", prompt, "Hello there, friend.", None, system_prompt="Be nice.")
        rude = store.add_generation("rude", prompt, "Go away.", None, system_prompt="Be nice.")
        store.add_vote(kind, rude, "a", rater="alice")
        store.add_vote(kind, rude, "b", rater="bob", shown_left="b")
        store.add_vote(kind, rude, "tie", rater="carol")  # not a preference: left out
        assert store.export("preferences", "jsonl", tmp_path / "dpo.jsonl") == 2

    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer
    from trl.data_utils import is_conversational

    dataset = load_dataset("json", data_files=str(tmp_path / "dpo.jsonl"), split="train")
    assert len(dataset) == 2 and is_conversational(dataset[0])
    assert dataset[0]["prompt"][0] == {"role": "system", "content": "Be nice."}
    assert [row["chosen"][0]["content"] for row in dataset] == ["Hello there, friend.", "Go away."]
    args = DPOConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=1,
        per_device_train_batch_size=2,
        report_to=[],
        use_cpu=True,
        logging_steps=1,
        save_strategy="no",
    )
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        args=args,
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
    )
    result = trainer.train()
    assert result.global_step == 1 and math.isfinite(result.training_loss)
