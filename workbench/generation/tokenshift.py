"""What a checkpoint changed, token by token: the same reply read under two checkpoints of one base model (an adapter
and its base, or two adapters), each token's probability under both and the shift between them.

    rows = token_shift(engine, messages, reply, before="base", after="my-run/checkpoint-200")
    rows[0]  # {"token_id": 504, "token": "The", "before": 0.41, "after": 0.83, "logprob_before": -0.89,
             #  "logprob_after": -0.19, "shift": 0.70, "top_before": "I", "top_after": "The"}

`shift` is the log-probability difference after - before (nats; +0.69 means twice as likely under `after`);
`top_before` / `top_after` are the token each checkpoint found most likely at that position. Both readings are one
teacher-forced pass each (`tokenprobs.reply_distributions`) on the one transformers reference model: peft switches
the adapter on for an adapter and off (`disable_adapter()`) for the base, so no second copy of the model is loaded.
Each checkpoint reads the prompt in its own chat template (as it was asked), and the reply's tokens are the same
for both (one tokenizer per family). Torch is imported only when a function runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workbench.errors import WorkbenchError
from workbench.generation.settings import Message
from workbench.generation.tokenprobs import reply_distributions
from workbench.registry import BASE_NAME


def check_pair(engine: Any, before: str | None, after: str | None) -> tuple[str, str]:
    """The two checkpoint names (None or "" is the base), refused with one sentence when they are the same or of two
    base models (their tokens and vocabularies differ, so there is no shift to read). Torch-free; `engine` is a
    ChatEngine or a Router."""
    for name in (before, after):
        if name is not None and not isinstance(name, str):  # a client may send anything where a name belongs
            raise WorkbenchError(f"A checkpoint is named by its text, not by {type(name).__name__} {name!r:.40}.")
    before, after = before or BASE_NAME, after or BASE_NAME
    if before == after:
        raise WorkbenchError(f"Choose two different checkpoints to compare; both are {after}.")
    first, second = engine.base_name(before), engine.base_name(after)
    if first != second:
        raise WorkbenchError(
            f"{before} belongs to {first} and {after} to {second}: compare two checkpoints of one base model, "
            "which read the same tokens."
        )
    return before, after


def _chosen(engine: Any, messages: Sequence[Message], reply: str, checkpoint: str):
    """(reply ids, each one's log-probability, the most likely token id at each position, decode) under
    `checkpoint`; the logits are dropped here, so two readings never hold two [tokens, vocabulary] tensors."""
    import torch

    ids, logits, decode = reply_distributions(engine, messages, reply, checkpoint)
    logp = torch.log_softmax(logits, -1)
    chosen = logp[torch.arange(len(ids)), torch.tensor(ids)].tolist()
    return ids, chosen, logp.argmax(-1).tolist(), decode


def token_shift(
    engine: Any, messages: Sequence[Message], reply: str, before: str | None = None, after: str | None = None
) -> list[dict[str, Any]]:
    """One row per reply token with its probability under `before` and `after` (see the module docstring).

    Raises WorkbenchError for an empty reply, two checkpoints that are the same or of different base models, an
    unknown checkpoint, or a remote model (whose weights are not here).
    """
    import math

    before, after = check_pair(engine, before, after)
    ids, first, top_first, decode = _chosen(engine, messages, reply, before)
    same, second, top_second, _ = _chosen(engine, messages, reply, after)
    if same != ids:  # one tokenizer per base model; a mismatch would pair the wrong tokens
        raise WorkbenchError(f"{before} and {after} split the reply into different tokens, so they cannot be compared.")
    known = sorted({*ids, *top_first, *top_second})
    text = dict(zip(known, decode(known), strict=True))
    return [
        {
            "token_id": token,
            "token": text[token],
            "before": math.exp(a),
            "after": math.exp(b),
            "logprob_before": a,
            "logprob_after": b,
            "shift": b - a,
            "top_before": text[tb],
            "top_after": text[ta],
        }
        for token, a, b, tb, ta in zip(ids, first, second, top_first, top_second, strict=True)
    ]
