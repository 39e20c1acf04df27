"""The generation lab's logic besides sweeps (workbench/studio/sweep.py): the first token's distribution for a
prompt, and one reply with the probability of each of its tokens (the token view).

Generation goes through the `ChatEngine` (or Router), probabilities through the transformers reference
(`workbench.generation.tokenprobs`). Torch-free here: the engine does the model work.

    probs = next_tokens(engine, messages, "base", k=10, temperature=0.7, top_p=0.9)
    text, rows = reply_tokens(engine, messages, "base", settings, k=5)   # rows: tokenprobs.token_probabilities
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.generation.settings import GenerationSettings, Message
from workbench.generation.tokenprobs import token_probabilities

if TYPE_CHECKING:
    from workbench.generation.engine import ChatEngine


def reply_tokens(
    engine: ChatEngine, messages: Sequence[Message], checkpoint: str, settings: GenerationSettings, *, k: int = 5
) -> tuple[str, list[dict[str, Any]]]:
    """Generate one reply at `settings`, then read each of its tokens' probabilities (and what these settings
    would cut) from one teacher-forced pass."""
    text, _ = engine.generate(messages, settings, checkpoint)
    return text, score_reply(engine, messages, checkpoint, text, settings, k=k)


def score_reply(
    engine: ChatEngine,
    messages: Sequence[Message],
    checkpoint: str,
    text: str,
    settings: GenerationSettings,
    *,
    k: int = 5,
) -> list[dict[str, Any]]:
    """The token rows of a given reply under `settings` (see `tokenprobs.token_probabilities`)."""
    return token_probabilities(
        engine,
        messages,
        text,
        checkpoint,
        temperature=settings.temperature,
        top_p=settings.top_p,
        top_k=settings.top_k,
        k=k,
        strength=settings.adapter_strength,
    )


def next_tokens(
    engine: ChatEngine,
    messages: Sequence[Message],
    checkpoint: str,
    *,
    k: int = 10,
    temperature: float = 1.0,
    top_p: float = 1.0,
) -> pd.DataFrame:
    """The k most likely first tokens of the reply at this temperature, and whether top-p sampling keeps each.

    Columns: token, token_id, probability, cumulative, kept_by_top_p. Nucleus sampling keeps the most likely
    tokens until their mass reaches top-p, so a token is kept when the mass before it is below top-p.
    """
    temperature = temperature if temperature > 0 else 1e-4  # greedy: all mass on the top token
    top = engine.next_token_probabilities(messages, checkpoint, k=k, temperature=temperature)
    frame = pd.DataFrame(top, columns=["token_id", "token", "probability"])[["token", "token_id", "probability"]]
    frame["cumulative"] = frame["probability"].cumsum()
    frame["kept_by_top_p"] = (frame["cumulative"] - frame["probability"]) < top_p
    return frame
