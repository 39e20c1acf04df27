"""Training on likes and dislikes: TRL's KTOTrainer on validated, templated prompt/completion/label replies, with LoRA.

`trainer.run_job` calls `kto_trainer` for a job whose method is "kto"; everything around the trainer (checkpoints,
resume, the run log, the store, early stopping) is the same as for SFT and DPO. As for DPO, with a new LoRA the
reference model is the base (TRL switches the adapter off to score the reference); started from an existing adapter
(`JobConfig.init_adapter`) TRL keeps a frozen copy of that adapter as the reference. Unequal numbers of liked and
disliked replies are evened out by KTO's loss weights, set from the training split's counts
(`unpaired.kto_weights`) and reported in the validation report (`PreparedData.summary`). TRL logs the loss, the
implicit rewards and the KL estimate; the run log keeps the loss, the reward margin (liked minus disliked reward)
and the KL, for training batches and for the validation replies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workbench.training.config import JobConfig
from workbench.training.unpaired import LabelledReply, kto_weights

# TRL's log keys -> the run log's names, beside DPO's (`dpo.preference_metrics`); TRL's KTO logs "rewards/margins"
# too (liked minus disliked reward, for batches that hold both kinds)
METRICS = {"kl": "kl"}


def reply_dataset(replies: Sequence[LabelledReply]) -> Any:
    """A `datasets.Dataset` of templated prompt/completion/label rows (TRL's standard unpaired form)."""
    from datasets import Dataset

    return Dataset.from_list([r.to_row() for r in replies])


def kto_trainer(
    config: JobConfig, data: Any, model: Any, lora: Any, common: dict[str, Any], callbacks: list[Any]
) -> tuple[Any, dict[str, Any]]:
    """TRL's KTOTrainer for the job, and the facts the run's start event reports.

    Args:
        config: The job (beta, max length).
        data: The prepared data (`PreparedData` whose train/val are LabelledReply lists).
        model: The base model, or a PeftModel holding the adapter to continue (then `lora` is None).
        lora: peft's LoraConfig for a new adapter, or None.
        common: The TrainingArguments shared with SFT and DPO (`trainer.training_args`).
        callbacks: Trainer callbacks (the run's, early stopping).
    """
    from trl import KTOConfig, KTOTrainer

    desirable, undesirable = kto_weights(data.train)
    args = KTOConfig(
        **common,
        beta=config.beta,
        max_length=config.max_length,
        desirable_weight=desirable,
        undesirable_weight=undesirable,
        precompute_ref_log_probs=False,  # one extra forward pass with the adapter off; nothing to store for resume
        prediction_loss_only=True,  # validation needs the loss and TRL's metrics, not vocabulary-wide logits
    )
    trainer = KTOTrainer(
        model=model,
        args=args,
        train_dataset=reply_dataset(data.train),
        eval_dataset=reply_dataset(data.val) if data.val else None,
        processing_class=data.tokenizer,
        peft_config=lora,
        callbacks=callbacks,
    )
    return trainer, {"sequences": len(data.train), "tokens": sum(r.tokens or 0 for r in data.train), "packing": False}
