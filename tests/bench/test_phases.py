"""The phase meter of `bench --case train_memory` (workbench/bench/phases.py): one DPO step of a tiny model with a
validation set and a save labels every phase of the profile, times it, and counts the policy's tokens once."""

from __future__ import annotations

import torch

from tests.training.test_chunked_head import _lora, _tiny, _tokenizer
from workbench.bench.phases import PhaseCallback, PhaseMeter


def test_one_dpo_step_meters_forward_reference_loss_backward_optimizer_eval_and_save(tmp_path):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    rows = [
        {"prompt": f"w3 w{10 + i} w{20 + i} w2 w3 ", "chosen": f"w{30 + i} w{40 + i} w2", "rejected": f"w{50 + i} w2"}
        for i in range(4)
    ]
    meter = PhaseMeter()
    callback = PhaseCallback(meter)
    args = DPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        max_length=32,
        max_steps=1,
        eval_strategy="steps",
        eval_steps=1,
        save_strategy="steps",
        save_steps=1,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
    )
    trainer = DPOTrainer(
        _tiny(torch.float32),
        args=args,
        train_dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(rows[:2]),
        processing_class=_tokenizer(),
        peft_config=_lora(),
        callbacks=[callback],
    )
    trainer.train()
    meter.stop()

    for phase in ("forward", "reference", "loss", "backward", "optimizer", "eval", "save"):
        assert meter.peaks[phase] > 0, phase
        assert meter.seconds[phase] > 0, phase
    assert (tmp_path / "checkpoint-1").is_dir()  # the save happened inside the "save" phase
    # The policy's tokens once (2 pairs = 4 sequences); the reference pass over the same tokens is not counted again.
    assert 0 < callback.tokens < 4 * 32
    assert callback.step_cpu_seconds > 0 and callback.step_seconds > 0
