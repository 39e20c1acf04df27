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
        assert meter.cpu_seconds[phase] >= 0 and meter.faults[phase] >= 0, phase
    # The step's work is CPU time, and its fresh tensors are page faults (what the allocator's setting changes).
    assert meter.cpu_seconds["forward"] + meter.cpu_seconds["backward"] > 0
    assert sum(meter.faults.values()) > 0
    assert (tmp_path / "checkpoint-1").is_dir()  # the save happened inside the "save" phase
    # The policy's tokens once (2 pairs = 4 sequences); the reference pass over the same tokens is not counted again.
    assert 0 < callback.tokens < 4 * 32
    assert callback.step_cpu_seconds > 0 and callback.step_seconds > 0


def test_the_case_reports_seconds_cpu_seconds_and_page_faults_per_step_phase_against_plain_trl():
    from workbench.bench.train_memory import _phase_times

    ours = {
        "phase_seconds": {"forward": 2.0, "eval": 1.0, "load": 9.0},
        "phase_cpu_seconds": {"forward": 3.0},
        "phase_faults": {"forward": 100, "backward": 50},
    }
    plain = {"phase_seconds": {"forward": 4.0}, "phase_cpu_seconds": {"forward": 6.0}, "phase_faults": {"forward": 400}}
    measures = {m.name: m for m in _phase_times("sft", ours, plain)}
    assert set(measures) == {
        "sft: seconds in forward",
        "sft: seconds in eval",
        "sft: CPU-seconds in forward",
        "sft: page faults in forward",
        "sft: page faults in backward",
    }  # "load" is not a step's phase
    assert measures["sft: CPU-seconds in forward"].ratio == 0.5
    assert measures["sft: page faults in forward"].ratio == 0.25
    assert measures["sft: page faults in backward"].anchor_value is None  # nothing to compare with
