"""The LM head and its log-probabilities in small chunks of tokens: training never holds the [tokens x vocab] logits.

    from workbench.training.chunked_head import loss_head
    loss_head(trainer)        # after TRL's SFTTrainer/DPOTrainer is built: "chunked", or "TRL fused" where it stays

TRL (>= 1.x) already calls every causal LM as `model(..., labels=labels, fused_lm_head=True)` and reads per-token
log-probabilities from a fused head it patches onto the model (`trl.trainer.utils.add_fused_lm_head`). On a CUDA
device with Triton that head is a maintained kernel that scores only the labelled positions, and it stays. On the
CPU it scores every position (labels -100 included) in tiles of up to 4,096 tokens x 32,768 vocabulary entries:
for a 4 x 512 batch and SmolLM2's 49,152 entries that is a 268 MB tile and about five more of its size for the
softmax and its gradient, most of a step's loss-phase memory. This head keeps TRL's contract (the same
`FusedCausalLMOutput` fields, the same loss) but projects only the labelled positions (the assistant tokens:
assistant-only masking without a copy of anything), in chunks sized to a fixed byte budget, and recomputes each
chunk's logits in the backward pass (`ChunkedLogProbs`), so the loss costs a few chunks of memory at most.

Where a model needs more than a plain linear head (logit soft-capping or scaling, MoE auxiliary losses, a vision
model, WPO's extra output), TRL's head is kept: it handles all of those.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import torch

CHUNK_BYTES = 64 * 1024**2  # one chunk's fp32 logits; a few of these are the loss's whole working set
# Config fields of models whose head does more than `hidden @ weight.T + bias` (TRL's head handles them).
_SPECIAL_HEAD = (
    "final_logit_softcapping",
    "logit_scale",
    "output_multiplier",
    "lm_head_multiplier",
    "logits_scaling",
    "output_router_logits",
)


def chunk_tokens(vocab: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Tokens per chunk so that one chunk's fp32 logits take about `chunk_bytes`."""
    return max(16, chunk_bytes // (4 * vocab))


class ChunkedLogProbs(torch.autograd.Function):
    """log softmax(hidden @ weight.T + bias)[target] per token, computed `chunk` tokens at a time.

    Forward keeps only each token's log-normaliser (one float) besides its inputs; backward recomputes each chunk's
    logits, turns them into the gradient in place (softmax minus the one-hot, times the incoming gradient) and
    multiplies it out, so at most one chunk of [chunk x vocab] logits and one temporary exist at any time.
    Also returns, without gradient, each token's entropy, mean logit and whether the target is the top-1 token
    (TRL's metrics).
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk: int):  # type: ignore[override]
        n = hidden.shape[0]
        log_z = hidden.new_empty(n, dtype=_acc(hidden))
        target_logit = torch.empty_like(log_z)
        entropy, mean_logit = torch.empty_like(log_z), torch.empty_like(log_z)
        top1 = torch.empty(n, dtype=torch.bool, device=hidden.device)
        for start in range(0, n, chunk):
            end = min(start + chunk, n)
            logits = _logits(hidden[start:end], weight, bias)
            y = targets[start:end]
            target_logit[start:end] = logits.gather(1, y.unsqueeze(1)).squeeze(1)
            top1[start:end] = logits.argmax(1) == y
            mean_logit[start:end] = logits.mean(1)
            lse = torch.logsumexp(logits, 1)
            log_z[start:end] = lse
            log_p = logits.sub_(lse.unsqueeze(1))  # in place: the chunk's logits become its log-probabilities
            entropy[start:end] = -log_p.exp().mul_(log_p).sum(1)
            del logits, log_p
        ctx.save_for_backward(hidden, weight, bias, targets, log_z)
        ctx.chunk = chunk
        ctx.mark_non_differentiable(entropy, mean_logit, top1)
        return target_logit - log_z, entropy, mean_logit, top1

    @staticmethod
    def backward(ctx, grad_log_probs, *_):  # type: ignore[override]
        hidden, weight, bias, targets, log_z = ctx.saved_tensors
        need_hidden, need_weight, need_bias = ctx.needs_input_grad[:3]
        acc = _acc(hidden)
        grad_hidden = torch.zeros_like(hidden, dtype=acc) if need_hidden else None
        grad_weight = torch.zeros_like(weight, dtype=acc) if need_weight else None
        grad_bias = torch.zeros_like(bias, dtype=acc) if need_bias else None
        for start in range(0, hidden.shape[0], ctx.chunk):
            end = min(start + ctx.chunk, hidden.shape[0])
            h = hidden[start:end]
            g = grad_log_probs[start:end].to(acc).unsqueeze(1)
            # d log p_y / dz = onehot(y) - softmax(z); times the incoming gradient, in place on the recomputed logits
            dz = _logits(h, weight, bias).sub_(log_z[start:end].unsqueeze(1)).exp_().mul_(-g)
            dz.scatter_add_(1, targets[start:end].unsqueeze(1), g)
            if grad_hidden is not None:
                grad_hidden[start:end] = dz @ weight.to(acc)
            if grad_weight is not None:
                grad_weight.addmm_(dz.t(), h.to(acc))
            if grad_bias is not None:
                grad_bias += dz.sum(0)
        return (
            grad_hidden.to(hidden.dtype) if grad_hidden is not None else None,
            grad_weight.to(weight.dtype) if grad_weight is not None else None,
            grad_bias.to(bias.dtype) if grad_bias is not None else None,
            None,
            None,
        )


def _acc(hidden: torch.Tensor) -> torch.dtype:
    """The dtype the softmax runs in: fp32 at least, as the full-logits loss upcasts bf16/fp16 logits."""
    return torch.promote_types(hidden.dtype, torch.float32)


def _logits(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """One chunk's logits, in `_acc`'s dtype."""
    logits = hidden @ weight.t()
    if bias is not None:
        logits = logits + bias
    return logits.to(_acc(hidden))


def chunked_log_probs(hidden: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, bias=None, chunk=None):
    """Per-position log p(label) of `hidden` [batch, seq, H] against next-token `labels` [batch, seq] (already
    shifted), zero where a label is -100, with entropy, mean logit and top-1 (also zero there) and the label mask.
    Only the labelled positions are projected."""
    mask = labels != -100
    selected = ChunkedLogProbs.apply(hidden[mask], weight, bias, labels[mask], chunk or chunk_tokens(weight.shape[0]))
    # masked_scatter keeps an all-masked batch connected to the graph: its loss is a differentiable zero
    return (*(x.new_zeros(mask.shape).masked_scatter(mask, x) for x in selected), mask)


def _plain_head(model: Any) -> bool:
    config = model.config
    if config.get_text_config() is not config:
        return False  # a vision-language model: TRL's head knows its layout
    return not any(getattr(config, name, None) for name in _SPECIAL_HEAD)


def add_chunked_head(model: Any) -> None:
    """Patch `model` (a causal LM, not its peft wrapper) so that `model(..., fused_lm_head=True)` uses this head.

    Any other call (generation, evaluation with logits) goes to the model's own forward."""
    from trl.trainer.utils import FusedCausalLMOutput

    # The class's forward, not the instance's: TRL has already replaced that one with its own fused head. This head
    # is only installed on a single device (the CPU), where no accelerate dispatch hook sits on the instance.
    own_forward = type(model).forward

    @functools.wraps(own_forward)  # keeps the signature `generate` checks its kwargs against
    def forward(self, *args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kwargs):
        if not fused_lm_head:
            extra = {"labels": labels, "shift_labels": shift_labels, "num_items_in_batch": num_items_in_batch}
            return own_forward(self, *args, **kwargs, **{k: v for k, v in extra.items() if v is not None})
        kwargs["use_cache"] = False
        hidden = getattr(self, self.base_model_prefix)(*args, **kwargs).last_hidden_state
        if shift_labels is None:
            hidden, shift_labels = hidden[:, :-1], labels[:, 1:]
        head = self.get_output_embeddings()
        log_probs, entropy, mean_logits, is_top1, mask = chunked_log_probs(
            hidden.to(head.weight.device), shift_labels.to(head.weight.device), head.weight, head.bias
        )
        count = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        return FusedCausalLMOutput(
            loss=-log_probs.sum() / count,
            log_probs=log_probs,
            entropy=entropy,
            mean_logits=mean_logits,
            is_top1=is_top1,
            label_mask=mask,
        )

    model.forward = types.MethodType(forward, model)


def uses_trl_kernel(device: torch.device) -> bool:
    """Whether TRL's fused head runs its Triton kernel here (CUDA/XPU with Triton): then it is the better head."""
    try:
        from trl.kernels.chunked_logprob import _use_triton  # TRL's own test, private: a TRL without it is older
    except ImportError:
        return device.type in ("cuda", "xpu")
    return _use_triton(device)


def loss_head(trainer: Any) -> str:
    """Put the chunked head on a TRL SFTTrainer's, DPOTrainer's or KTOTrainer's model where it is the better head;
    returns which head the run uses: "chunked" or "TRL fused" (a Triton device, a special head, or DPO's WPO
    weighting). All three call the model with `fused_lm_head=True`, for the policy and the reference alike."""
    from peft import PeftModel

    model = trainer.model
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    if uses_trl_kernel(base.device) or not _plain_head(base) or getattr(trainer, "use_weighting", False):
        return "TRL fused"
    add_chunked_head(base)
    return "chunked"
