"""Token probabilities of a given reply: one teacher-forced forward pass of the transformers reference model over
prompt + reply, read position by position.

    rows = token_probabilities(engine, messages, reply, "base", temperature=0.7, top_p=0.9, top_k=50, k=5)
    rows[0]  # {"token": "The", "probability": 0.61, "logprob": -0.49, "entropy": 1.3, "rank": 0,
             #  "scaled": 0.83, "cut": None, "alternatives": [{"token": "The", "probability": 0.83, "cut": None}, ...]}
    mean_logprob(engine, messages, reply, "base")  # the reply's mean token log-probability under the model

`probability`, `logprob` and `entropy` (nats) are the model's own distribution (temperature 1, nothing cut).
`scaled` and the alternatives' probabilities are after the temperature; `cut` says which filter would have removed
the token under the given settings, in transformers' order (temperature, then top-k, then top-p over what top-k
kept): "top-k", "top-p", "greedy" (temperature 0 keeps only the most likely token), or None. The reply is
re-tokenized with the reference tokenizer, so a llama.cpp reply is scored as transformers would write it. Torch
is imported only when a function runs; the engine (or Router) does the routing to the checkpoint's model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings, Message, check_messages

MAX_REPLY_TOKENS = 1024
# Only this much of a reply is tokenized (under the tokenizer's lock, which every chat waits on): tokens of text
# average four or five characters, so the first MAX_REPLY_TOKENS tokens of any real reply lie well within it.
MAX_REPLY_CHARS = MAX_REPLY_TOKENS * 32


def reply_distributions(
    engine: Any, messages: Sequence[Message], reply: str, checkpoint: str | None, strength: float = 1.0
):
    """(reply token ids, logits [n, vocab] predicting each of them, decode) from one forward pass, the checkpoint's
    adapter at `strength`.

    `engine` is a ChatEngine or a Router; `decode(ids)` turns token ids into text under the engine's tokenizer lock.
    """
    import torch

    if not isinstance(reply, str) or not reply.strip():
        raise WorkbenchError("There is no reply to read token probabilities from: generate one first.")
    engine, local = engine.route(checkpoint)
    engine.reference()  # one sentence for a remote model, before any tokenizing
    with engine._token_lock:
        reply_ids = list(engine.tokenizer(reply[:MAX_REPLY_CHARS], add_special_tokens=False)["input_ids"])
    reply_ids = reply_ids[:MAX_REPLY_TOKENS]
    prompt_ids, _ = engine.fit(check_messages(messages), len(reply_ids), engine.resolve_adapter(local))
    ids = prompt_ids + reply_ids
    with engine.model_for(local, strength) as model, torch.no_grad():
        inputs = torch.tensor([ids], device=model.device)
        logits = model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).logits[0].float()
    # Position i predicts token i + 1: the reply's tokens are predicted by the positions just before them.
    start = len(prompt_ids)

    def decode(token_ids: list[int]) -> list[str]:
        with engine._token_lock:
            return [engine.tokenizer.decode([i]) for i in token_ids]

    return reply_ids, logits[start - 1 : len(ids) - 1].cpu(), decode


def _cuts(scaled, order_rank, mass_before, settings: GenerationSettings) -> list[str | None]:
    """Which filter removes each token, from its rank and the top-k-renormalised mass before it."""
    cuts = []
    for rank, before in zip(order_rank, mass_before, strict=True):
        if settings.greedy:
            cuts.append(None if rank == 0 else "greedy")
        elif settings.top_k and rank >= settings.top_k:
            cuts.append("top-k")
        elif settings.top_p < 1 and before >= settings.top_p:
            cuts.append("top-p")
        else:
            cuts.append(None)
    return cuts


def _position(logits, chosen: int, settings: GenerationSettings, k: int) -> dict[str, Any]:
    import torch

    logp = torch.log_softmax(logits, -1)
    probs = logp.exp()
    scaled = torch.softmax(logits / max(settings.temperature, 1e-4), -1)
    kept = settings.top_k if settings.top_k else scaled.numel()
    top = torch.topk(scaled, max(k, 1))
    mass_k = float(torch.topk(scaled, min(kept, scaled.numel())).values.sum())
    # The mass before a token counts only tokens more likely than it, renormalised over what top-k keeps.
    tops = top.values.tolist()
    before = [(sum(tops[:r])) / mass_k for r in range(len(tops))]
    chosen_scaled = float(scaled[chosen])
    rank = int((scaled > chosen_scaled).sum())
    chosen_before = float(scaled[scaled > chosen_scaled].sum()) / mass_k
    return {
        "token_id": chosen,
        "probability": float(probs[chosen]),
        "logprob": float(logp[chosen]),
        "entropy": float(-(probs * logp).nan_to_num().sum()),
        "rank": rank,
        "scaled": chosen_scaled,
        "cut": _cuts(scaled, [rank], [chosen_before], settings)[0],
        "alternatives": list(
            zip(top.indices.tolist(), tops, _cuts(scaled, list(range(len(tops))), before, settings), strict=True)
        ),
    }


def token_probabilities(
    engine: Any,
    messages: Sequence[Message],
    reply: str,
    checkpoint: str | None = None,
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    k: int = 5,
    strength: float = 1.0,
) -> list[dict[str, Any]]:
    """One row per reply token (see the module docstring); alternatives are the `k` most likely tokens after
    the temperature, each with its probability and cut; the checkpoint's adapter at `strength`."""
    if not 1 <= k <= 20:
        raise WorkbenchError(f"Alternatives to show must be between 1 and 20, not {k}.")
    settings = GenerationSettings(temperature=temperature, top_p=top_p, top_k=top_k)
    reply_ids, logits, decode = reply_distributions(engine, messages, reply, checkpoint, strength)
    rows = [_position(logits[i], chosen, settings, k) for i, chosen in enumerate(reply_ids)]
    texts = iter(decode(reply_ids + [a[0] for row in rows for a in row["alternatives"]]))
    for row in rows:
        row["token"] = next(texts)
    for row in rows:
        row["alternatives"] = [
            {"token_id": i, "token": next(texts), "probability": p, "cut": cut} for i, p, cut in row["alternatives"]
        ]
    return rows


def mean_logprob(
    engine: Any, messages: Sequence[Message], reply: str, checkpoint: str | None = None, strength: float = 1.0
) -> float:
    """The reply's mean token log-probability under the model, its adapter at `strength` (nats per token; NaN for an
    empty reply)."""
    import torch

    if not reply.strip():
        return float("nan")
    reply_ids, logits, _ = reply_distributions(engine, messages, reply, checkpoint, strength)
    chosen = torch.log_softmax(logits, -1)[torch.arange(len(reply_ids)), torch.tensor(reply_ids)]
    return float(chosen.mean())


def prompt_logprobs(
    engine: Any, ids: Sequence[int], checkpoint: str | None = None, k: int = 0, strength: float = 1.0
) -> list[dict[str, Any]]:
    """Each token of a prompt (token ids as given, nothing added) with its log-probability given the tokens before
    it, from one teacher-forced forward pass of the transformers reference with the checkpoint's adapter: rows
    {"token_id", "token", "logprob", "top": [(token, logprob), ...k most likely]}; the first token has no context,
    so its logprob is None and its top empty. What an API's `echo` with `logprobs` returns (lm-eval's
    loglikelihood). `engine` is a ChatEngine or a Router; the adapter is at `strength`."""
    import torch

    engine, local = engine.route(checkpoint)
    engine.reference()  # one sentence for a remote model
    ids = list(ids)
    with engine.model_for(local, strength) as model, torch.no_grad():
        inputs = torch.tensor([ids], device=model.device)
        logits = model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).logits[0, :-1]
        logp = torch.log_softmax(logits.float(), -1).cpu()
    del logits
    # Position i predicts token i + 1.
    chosen = logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].tolist() if len(ids) > 1 else []
    top = torch.topk(logp, k) if k and len(ids) > 1 else None
    top_ids = top.indices.tolist() if top is not None else [[] for _ in chosen]
    top_values = top.values.tolist() if top is not None else [[] for _ in chosen]
    with engine._token_lock:
        texts = {i: engine.tokenizer.decode([i]) for i in {*ids, *(i for row in top_ids for i in row)}}
    rows = [{"token_id": ids[0], "token": texts[ids[0]], "logprob": None, "top": []}]
    for i, token in enumerate(ids[1:]):
        pairs = [(texts[t], v) for t, v in zip(top_ids[i], top_values[i], strict=True)]
        rows.append({"token_id": token, "token": texts[token], "logprob": chosen[i], "top": pairs})
    return rows
