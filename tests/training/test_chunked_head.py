"""The chunked LM head (workbench/training/chunked_head.py): the same loss, gradients and metrics as full logits,
and the same losses as TRL's own head inside TRL's SFTTrainer, DPOTrainer and KTOTrainer, on tiny random models
built here.

Run: .venv/bin/python -m pytest -q tests/training/test_chunked_head.py
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from workbench.training.chunked_head import add_chunked_head, chunk_tokens, chunked_log_probs, loss_head

VOCAB = 211


def _tiny(dtype=torch.float64, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        pad_token_id=0,
    )
    return LlamaForCausalLM(config).to(dtype)


def _batch():
    """Three rows: a prompt span and a second user turn masked out (assistant-only), the last row right-padded."""
    torch.manual_seed(1)
    ids = torch.randint(1, VOCAB, (3, 24))
    mask = torch.ones_like(ids)
    mask[2, 15:] = 0
    ids[2, 15:] = 0
    labels = ids.clone()
    labels[:, :7] = -100  # the prompt
    labels[0, 12:16] = -100  # a later user turn
    labels[2, 15:] = -100  # padding
    return ids, mask, labels


def _full_logits_loss(model, ids, mask, labels):
    """The reference: every logit materialised, log-softmax in float64, mean over the labelled tokens."""
    logits = model(input_ids=ids, attention_mask=mask).logits.double()
    logp = F.log_softmax(logits[:, :-1], -1)
    target = labels[:, 1:]
    valid = target != -100
    picked = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(picked * valid).sum() / valid.sum(), logp, valid


def _grads(model) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return out


@pytest.mark.parametrize("chunk", [None, 5])  # one chunk, and chunks that split rows unevenly
def test_chunked_loss_and_gradients_equal_the_full_logits_loss(chunk):
    model = _tiny()
    ids, mask, labels = _batch()
    want, logp, valid = _full_logits_loss(model, ids, mask, labels)
    want.backward()
    reference = _grads(model)

    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
    head = model.get_output_embeddings()
    log_probs, entropy, mean_logits, top1, used = chunked_log_probs(hidden, labels[:, 1:], head.weight, chunk=chunk)
    got = -log_probs.sum() / used.sum()
    got.backward()
    grads = _grads(model)

    assert torch.equal(used, valid)
    assert abs(got.item() - want.item()) < 1e-12
    assert set(grads) == set(reference)  # the tied embedding gets its head gradient too
    for name, grad in grads.items():
        torch.testing.assert_close(grad, reference[name], rtol=1e-9, atol=1e-12, msg=name)
    # TRL's metrics, zero outside the labels
    full_logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].double()
    want_entropy = -(logp.exp() * logp).sum(-1) * valid
    torch.testing.assert_close(entropy, want_entropy, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(mean_logits, full_logits.mean(-1) * valid, rtol=1e-9, atol=1e-12)
    assert torch.equal(top1, (full_logits.argmax(-1) == labels[:, 1:]) & valid)


def test_the_patched_forward_gives_the_models_own_loss_and_leaves_plain_calls_alone():
    model = _tiny(torch.float32)
    ids, mask, labels = _batch()
    own = model(input_ids=ids, attention_mask=mask, labels=labels)
    own.loss.backward()
    reference = _grads(model)
    add_chunked_head(model)
    fused = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
    fused.loss.backward()
    assert abs(fused.loss.item() - own.loss.item()) < 1e-5
    for name, grad in _grads(model).items():
        torch.testing.assert_close(grad, reference[name], rtol=1e-4, atol=1e-6, msg=name)
    assert model(input_ids=ids, attention_mask=mask).logits.shape == (3, 24, VOCAB)  # generation/eval unchanged


def test_an_all_masked_batch_is_a_differentiable_zero():
    model = _tiny()
    add_chunked_head(model)
    ids, mask, _ = _batch()
    out = model(input_ids=ids, attention_mask=mask, labels=torch.full_like(ids, -100), fused_lm_head=True)
    out.loss.backward()
    assert out.loss.item() == 0.0


def test_a_chunk_is_sized_to_the_byte_budget():
    assert chunk_tokens(49_152) == 341  # SmolLM2: 64 MiB of fp32 logits per chunk
    assert chunk_tokens(10**9) == 16


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(VOCAB)}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="w1"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="w0", eos_token="w2", unk_token="w1")
    tok.chat_template = (
        "{% for m in messages %}w3 {{ m['content'] }} w2 {% endfor %}{% if add_generation_prompt %}w3 {% endif %}"
    )
    return tok


def _trainer_losses(trainer, batches: int = 2) -> list[float]:
    trainer.model.train()
    loader = trainer.get_train_dataloader()
    out = []
    for _, batch in zip(range(batches), loader, strict=False):
        torch.manual_seed(0)  # the same LoRA dropout mask for both heads
        out.append(trainer.compute_loss(trainer.model, trainer._prepare_inputs(batch)).item())
    return out


def _assert_the_chunked_head_keeps_the_losses(trainer) -> None:
    trl_head = _trainer_losses(trainer)
    assert loss_head(trainer) == "chunked"
    assert _trainer_losses(trainer) == pytest.approx(trl_head, rel=1e-5)


def _lora():
    from peft import LoraConfig

    return LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM", init_lora_weights=False
    )  # random B: the policy differs from the reference, so the DPO loss is not just log 2


def test_sft_trainer_loss_is_the_same_with_the_chunked_head(tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    ids, _, labels = _batch()
    rows = [{"input_ids": i.tolist()[:15], "labels": y.tolist()[:15]} for i, y in zip(ids, labels, strict=True)]
    args = SFTConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        max_length=32,
        packing=True,
        use_cpu=True,
        report_to="none",
        seed=0,
    )
    trainer = SFTTrainer(
        _tiny(torch.float32),
        args=args,
        train_dataset=Dataset.from_list(rows * 2),
        processing_class=_tokenizer(),
        peft_config=_lora(),
    )
    trl_head = _trainer_losses(trainer)
    assert loss_head(trainer) == "chunked"
    assert _trainer_losses(trainer) == pytest.approx(trl_head, rel=1e-5)


def test_dpo_trainer_loss_is_the_same_with_the_chunked_head_and_the_reference_is_the_adapter_switched_off(tmp_path):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    rows = [
        {"prompt": f"w3 w{10 + i} w{20 + i} w2 w3 ", "chosen": f"w{30 + i} w{40 + i} w2", "rejected": f"w{50 + i} w2"}
        for i in range(4)
    ]
    args = DPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=2, max_length=32, use_cpu=True, report_to="none", seed=0
    )
    trainer = DPOTrainer(
        _tiny(torch.float32),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=_tokenizer(),
        peft_config=_lora(),
    )
    assert trainer.ref_model is None  # no second model: the reference is the base with the adapter disabled
    _assert_the_chunked_head_keeps_the_losses(trainer)


def test_kto_trainer_loss_is_the_same_with_the_chunked_head_and_the_reference_is_the_adapter_switched_off(tmp_path):
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    rows = [
        {"prompt": f"w3 w{10 + i} w{20 + i} w2 w3 ", "completion": f"w{30 + i} w{40 + i} w2", "label": i % 2 == 0}
        for i in range(4)
    ]
    args = KTOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=2, max_length=32, use_cpu=True, report_to="none", seed=0
    )
    trainer = KTOTrainer(
        _tiny(torch.float32),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=_tokenizer(),
        peft_config=_lora(),
    )
    assert trainer.ref_model is None  # the same memory path as DPO: no second model
    _assert_the_chunked_head_keeps_the_losses(trainer)
