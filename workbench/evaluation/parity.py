"""Do two backends compute the same model? Teacher-forced agreement between llama.cpp and transformers.

Free-running greedy replies can part at a near-tie (a small model's first token for "What is the capital of
France?" is "The" 0.152 against "L" 0.140) and then differ everywhere after, although both backends are
right. So the comparison is teacher-forced: llama.cpp's greedy reply to each prompt (its token ids and their
log-probabilities) is scored by the transformers model on exactly the same tokens. At each position we ask
whether transformers' most likely token is the one llama.cpp chose, and compare the two backends' mean
negative log-likelihood of the reply.

    engine = ChatEngine.load(settings)          # on the llama.cpp backend
    report = agreement(engine, prompts, max_new_tokens=48, adapter="my-run", strength=0.5)
    report.argmax_agreement, report.nll_relative_difference
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from workbench.errors import WorkbenchError
from workbench.generation.settings import Message, check_messages


@dataclass
class Agreement:
    """How closely transformers reproduces llama.cpp's greedy replies, position by position.

    Attributes:
        prompts: Prompts answered.
        positions: Reply tokens scored.
        argmax_agreement: Share of positions where transformers' most likely token is llama.cpp's token.
        mean_nll_llamacpp: Mean negative log-likelihood of the reply tokens under llama.cpp.
        mean_nll_transformers: The same under transformers.
        nll_relative_difference: |transformers - llama.cpp| / llama.cpp of the mean NLL.
        adapter: The adapter active on both sides, or None for the base model.
        strength: The adapter's strength on both sides (1 = as trained).
    """

    prompts: int
    positions: int
    argmax_agreement: float
    mean_nll_llamacpp: float
    mean_nll_transformers: float
    nll_relative_difference: float
    adapter: str | None = None
    strength: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def teacher_forced(model: Any, prompt: Sequence[int], reply: Sequence[int]) -> tuple[Any, Any]:
    """The log-probabilities of `reply`'s tokens after `prompt` under `model` (one forward pass, no gradient), and
    the model's most likely token at each reply position (both 1-D tensors of the reply's length, fp32 scores)."""
    import torch

    with torch.no_grad():
        ids = torch.tensor([list(prompt) + list(reply)], device=model.device)
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].float()
    predicted = logits[len(prompt) - 1 : -1]  # the logits that predict each reply token
    target = torch.tensor(list(reply), device=predicted.device)
    return torch.log_softmax(predicted, dim=-1).gather(1, target[:, None])[:, 0], predicted.argmax(-1)


def agreement(
    engine: Any,
    prompts: Sequence[Sequence[Message]],
    *,
    max_new_tokens: int = 48,
    adapter: str | None = None,
    strength: float = 1.0,
) -> Agreement:
    """Score llama.cpp's greedy replies to `prompts` with transformers, teacher-forced (see the module docstring).

    Args:
        engine: A ChatEngine on the llama.cpp backend (its transformers reference is loaded on first use).
        prompts: Conversations, each ending with a user message.
        max_new_tokens: Length of each greedy reply.
        adapter: An adapter name, active on both backends; None or "base" for the base model.
        strength: The adapter's strength on both backends: llama.cpp's LoRA scale, peft's scaling times it.
    """
    import torch

    if engine.backend_name != "llamacpp":
        raise WorkbenchError("Backend agreement compares llama.cpp with transformers: load the engine on llama.cpp.")
    chosen = engine.resolve_adapter(adapter)
    positions = agreed = 0
    nll_cpp = nll_hf = 0.0
    for messages in prompts:
        prompt, _ = engine.fit(check_messages(messages), max_new_tokens)
        scored = engine.backend.greedy_tokens(prompt, max_new_tokens, chosen, strength)
        if not scored:
            continue
        reply = [token for token, _ in scored]
        with engine.model_for(adapter, strength) as model:
            logprobs, predicted = teacher_forced(model, prompt, reply)
        agreed += int((predicted == torch.tensor(reply, device=predicted.device)).sum())
        positions += len(reply)
        nll_hf -= float(logprobs.sum())
        nll_cpp -= sum(lp for _, lp in scored)
    if not positions:
        raise WorkbenchError("No reply tokens to compare: every greedy reply was empty.")
    cpp, hf = nll_cpp / positions, nll_hf / positions
    return Agreement(
        prompts=len(prompts),
        positions=positions,
        argmax_agreement=agreed / positions,
        mean_nll_llamacpp=cpp,
        mean_nll_transformers=hf,
        nll_relative_difference=abs(hf - cpp) / cpp if cpp else 0.0,
        adapter=chosen.name if chosen else None,
        strength=strength,
    )
