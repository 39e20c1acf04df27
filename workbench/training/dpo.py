"""Preference training: TRL's DPOTrainer on validated, templated prompt/chosen/rejected pairs, with LoRA.

`trainer.run_job` calls `dpo_trainer` for a job whose method is "dpo"; everything around the trainer
(checkpoints, resume, the run log, the store, early stopping) is the same as for SFT. With a new LoRA the
reference model is the base (TRL disables the adapter to score the reference); started from an existing
adapter (`JobConfig.init_adapter`, e.g. an SFT run), TRL keeps a frozen copy of that adapter as the
reference, the usual SFT-then-DPO recipe. TRL logs the loss and the implicit rewards of both replies; the
run log keeps the loss, the reward margin (chosen minus rejected) and the reward accuracy (share of pairs
whose chosen reply gets the higher reward), for training batches and for the validation pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workbench.training.config import JobConfig
from workbench.training.preferences import PreferencePair

# TRL's log keys -> the run log's names (train logs; eval logs carry the same keys prefixed with "eval_")
METRICS = {"rewards/margins": "reward_margin", "rewards/accuracies": "reward_accuracy"}


def pair_dataset(pairs: Sequence[PreferencePair]) -> Any:
    """A `datasets.Dataset` of templated prompt/chosen/rejected text (TRL's standard preference form)."""
    from datasets import Dataset

    return Dataset.from_list([p.to_row() for p in pairs])


def dpo_trainer(
    config: JobConfig, data: Any, model: Any, lora: Any, common: dict[str, Any], callbacks: list[Any]
) -> tuple[Any, dict[str, Any]]:
    """TRL's DPOTrainer for the job, and the facts the run's start event reports.

    Args:
        config: The job (beta, loss type, max length).
        data: The prepared data (`PreparedData` whose train/val are PreferencePair lists).
        model: The base model, or a PeftModel holding the adapter to continue (then `lora` is None).
        lora: peft's LoraConfig for a new adapter, or None.
        common: The TrainingArguments shared with SFT (`trainer.training_args`).
        callbacks: Trainer callbacks (the run's, early stopping).
    """
    from trl import DPOConfig, DPOTrainer

    train_ds = pair_dataset(data.train)
    val_ds = pair_dataset(data.val) if data.val else None
    args = DPOConfig(
        **common,
        beta=config.beta,
        loss_type=[config.loss_type],
        max_length=config.max_length,
        # Reference log-probabilities are recomputed each batch: with LoRA that is one extra forward pass with the
        # adapter switched, and it keeps resume simple (nothing precomputed to store).
        precompute_ref_log_probs=False,
        prediction_loss_only=True,  # validation needs the loss and TRL's reward metrics, not vocabulary-wide logits
    )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=data.tokenizer,
        peft_config=lora,
        callbacks=callbacks,
    )
    tokens = sum(p.tokens or 0 for p in data.train)
    return trainer, {"sequences": len(train_ds), "tokens": tokens, "packing": False}


def preference_metrics(logs: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The reward margin and accuracy (DPO) or KL (KTO) of one TRL log dict ({} for an SFT log), under the run
    log's names."""
    from workbench.training.kto import METRICS as KTO_METRICS

    names = METRICS | KTO_METRICS
    return {name: logs[prefix + key] for key, name in names.items() if prefix + key in logs}
