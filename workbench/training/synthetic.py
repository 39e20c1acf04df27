"""A synthetic LoRA adapter: randomly initialised, saved exactly as a trained one, for benchmarks and tests.

    random_adapter(base_dir, settings.adapters_dir / "bench-lora", "SmolLM2-135M-Instruct", scale=0.3)

`init_lora_weights=False` makes both LoRA matrices random, so the adapter visibly changes the model's output
(a freshly initialised trainable adapter is a no-op); `scale` multiplies lora_B, so a small value changes the
model without wrecking it. It measures and exercises the plumbing (loading, conversion, switching, speed),
never quality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def random_adapter(
    base: Path | Any,
    target: Path,
    base_name: str,
    seed: int = 0,
    rank: int = 8,
    *,
    scale: float = 1.0,
    modules: tuple[str, ...] = ("q_proj", "v_proj"),
    **lora_options: Any,
) -> Path:
    """Save a random LoRA adapter at `target`, recorded as trained on `base_name` (as Workbench's training writes
    it); returns `target`.

    Args:
        base: The transformers model's folder, or the model itself (copied, so it stays as it was).
        target: The adapter folder to write.
        base_name: The base model's name to record.
        seed: Seed of the random weights.
        rank: LoRA rank (lora_alpha is twice the rank).
        scale: Multiplies lora_B.
        modules: Module names to adapt.
        **lora_options: More `peft.LoraConfig` fields (use_rslora, alpha_pattern, use_dora...).
    """
    import copy

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    if isinstance(base, (str, Path)):
        model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
    else:
        model = copy.deepcopy(base)
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules=list(modules), init_lora_weights=False, **lora_options
    )
    peft_model = get_peft_model(model, config)
    if scale != 1.0:
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_B" in name:
                    param.mul_(scale)
    peft_model.peft_config["default"].base_model_name_or_path = base_name
    peft_model.save_pretrained(target)
    return target
