"""Conversations -> token ids and labels in the model's own chat template, with loss on assistant tokens only.

TRL's SFTTrainer takes the result as an already tokenized dataset ("input_ids" + "labels") and packs,
collates and trains on it. We tokenize here instead of handing TRL the messages because of multi-turn
chats: TRL's assistant-only loss for conversations needs a chat template with `{% generation %}`
markers (SmolLM2's and most small models' templates have none, and TRL patches only a fixed list of
known templates), and its prompt/completion form trains only the last assistant turn. Here every
assistant turn is located the way TRL locates a completion (render the conversation up to the turn with
the generation prompt, then with the turn, and take the difference), which works with any template and
trains each assistant turn once in a single sequence. When a template renders earlier turns
differently once later ones follow (some drop past reasoning), the conversation is split into one
prompt/completion sequence per assistant turn instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workbench.training.data import Example, Message

IGNORE = -100  # label value the loss skips


def _ids(tokenizer: Any, messages: Sequence[Message], generation_prompt: bool = False) -> list[int]:
    out = tokenizer.apply_chat_template(
        list(messages), tokenize=True, add_generation_prompt=generation_prompt, return_dict=True
    )
    return list(out["input_ids"])


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def encode_conversation(tokenizer: Any, messages: Sequence[Message]) -> list[dict[str, list[int]]]:
    """Token ids and labels (-100 outside assistant turns) for one conversation.

    Returns one sequence when the chat template renders the conversation prefix-consistently (the
    usual case), else one sequence per assistant turn.
    """
    full = _ids(tokenizer, messages)
    labels = [IGNORE] * len(full)
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    for i in turns:
        prompt = _ids(tokenizer, messages[:i], generation_prompt=True)
        upto = _ids(tokenizer, messages[: i + 1])
        if full[: len(upto)] != upto or upto[: len(prompt)] != prompt:
            return _per_turn(tokenizer, messages, turns)
        labels[len(prompt) : len(upto)] = full[len(prompt) : len(upto)]
    return [{"input_ids": full, "labels": labels}]


def _per_turn(tokenizer: Any, messages: Sequence[Message], turns: list[int]) -> list[dict[str, list[int]]]:
    out = []
    for i in turns:
        prompt = _ids(tokenizer, messages[:i], generation_prompt=True)
        upto = _ids(tokenizer, messages[: i + 1])
        start = _common_prefix(prompt, upto)  # as TRL does when the prompt is not an exact prefix
        out.append({"input_ids": upto, "labels": [IGNORE] * start + upto[start:]})
    return out


def encode_examples(tokenizer: Any, examples: Sequence[Example]) -> Any:
    """A `datasets.Dataset` with "input_ids" and "labels" for the examples (in order)."""
    from datasets import Dataset

    rows: list[dict[str, list[int]]] = []
    for example in examples:
        rows.extend(encode_conversation(tokenizer, example.messages))
    return Dataset.from_list(rows)


def packing_pays(lengths: Sequence[int], max_length: int) -> bool:
    """Whether packing saves work: when typical sequences fill at most half a row, a padded batch is mostly padding."""
    if not lengths:
        return False
    ordered = sorted(lengths)
    return ordered[len(ordered) // 2] * 2 <= max_length
