"""The generation-parameter lab: sample one prompt over a temperature x top-p grid and measure how varied the
outputs are; read the model's next-token distribution for the prompt.

Generation goes through the `ChatEngine` (the same path as the chat); diversity is
`workbench.evaluation.metrics.diversity` (distinct-n and self-BLEU on sacrebleu's tokens). Torch-free here: the
engine does the model work.

    outputs = sweep(engine, messages, "base", [0.3, 1.0], [0.5, 1.0], samples=3, max_new_tokens=48)
    table = diversity(outputs)       # one row per setting: distinct_1, distinct_2, self_bleu, mean_tokens
    probs = next_tokens(engine, messages, "base", k=10, temperature=0.7, top_p=0.9)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.evaluation.metrics.diversity import distinct_n, self_bleu
from workbench.generation.settings import GenerationSettings, Message

if TYPE_CHECKING:
    from workbench.generation.engine import ChatEngine

MAX_RUNS = 48  # grid points x samples: each is one generation on a possibly slow CPU
SWEEP_COLUMNS = ["temperature", "top_p", "sample", "seed", "output", "new_tokens", "finish_reason"]


def grid(temperatures: Sequence[float], top_ps: Sequence[float]) -> list[GenerationSettings]:
    """Validated settings for every (temperature, top-p) pair, duplicates removed, in grid order."""
    temps = sorted({float(t) for t in temperatures})
    ps = sorted({float(p) for p in top_ps})
    if not temps or not ps:
        raise WorkbenchError("Choose at least one temperature and one top-p value.")
    return [GenerationSettings(temperature=t, top_p=p, top_k=0) for t, p in itertools.product(temps, ps)]


def sweep(
    engine: ChatEngine,
    messages: Sequence[Message],
    checkpoint: str,
    temperatures: Sequence[float],
    top_ps: Sequence[float],
    *,
    samples: int = 3,
    max_new_tokens: int = 48,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """`samples` outputs for each grid setting (seeds seed, seed+1, ...: the same seeds in every cell, so cells
    differ only by their settings). top-k is off so top-p alone truncates. Columns: SWEEP_COLUMNS."""
    settings = grid(temperatures, top_ps)
    if not 1 <= samples <= 10:
        raise WorkbenchError(f"Samples per setting must be between 1 and 10, not {samples}.")
    total = len(settings) * samples
    if total > MAX_RUNS:
        raise WorkbenchError(f"The sweep would make {total} generations; keep it at {MAX_RUNS} or fewer.")
    cells = [(cell, i) for cell in settings for i in range(samples)]
    # Every cell at once: llama.cpp samples them side by side in its slots, each with its own seed.
    replies = engine.generate_many(
        [(messages, cell.replace(max_new_tokens=max_new_tokens, seed=seed + i), checkpoint) for cell, i in cells],
        progress=progress,
    )
    rows = [
        [cell.temperature, cell.top_p, i, seed + i, text, stats.new_tokens, stats.finish_reason]
        for (cell, i), (text, stats) in zip(cells, replies, strict=True)
    ]
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


def diversity(outputs: pd.DataFrame) -> pd.DataFrame:
    """Per setting: distinct-1, distinct-2 (unique n-grams over all n-grams), self-BLEU (lower is more varied;
    NaN with one sample) and the mean number of new tokens."""
    rows = []
    for (temperature, top_p), cell in outputs.groupby(["temperature", "top_p"], sort=True):
        texts = list(cell["output"])
        rows.append(
            {
                "temperature": temperature,
                "top_p": top_p,
                "samples": len(texts),
                "distinct_1": distinct_n(texts, 1),
                "distinct_2": distinct_n(texts, 2),
                "self_bleu": self_bleu(texts) if len(texts) > 1 else float("nan"),
                "mean_tokens": float(cell["new_tokens"].mean()),
            }
        )
    return pd.DataFrame(rows)


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
