"""Diversity of a set of outputs (for the generation-parameter lab): distinct-n and self-BLEU.

Both work on sacrebleu's 13a tokenisation, the one BLEU uses, so numbers line up with the BLEU scores.

    distinct_n(outputs, 2)   # unique bigrams / all bigrams over the set, 0..1 (higher = more varied)
    self_bleu(outputs)       # mean sentence BLEU of each output against all the others, 0..100 (lower = more varied)
    repetition_rate(output)  # rep-3 of one output: share of its 3-grams that repeat an earlier one, 0..1
"""

from __future__ import annotations

from collections.abc import Sequence

from workbench.errors import WorkbenchError


def _tokens(text: str) -> list[str]:
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    return Tokenizer13a()(text).split()


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct-n (Li et al., 2016): unique n-grams divided by all n-grams over every text; 0.0 when none.

    Args:
        texts: The outputs.
        n: N-gram order, >= 1.
    """
    if n < 1:
        raise WorkbenchError(f"The n-gram order must be at least 1, not {n}.")
    if not texts:
        raise WorkbenchError("There are no outputs to measure.")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        tokens = _tokens(text)
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        seen.update(grams)
        total += len(grams)
    return len(seen) / total if total else 0.0


def self_bleu(texts: Sequence[str]) -> float:
    """Self-BLEU (Zhu et al., 2018): the mean sentence BLEU of each text with every other text as a reference.

    Sentence BLEU with effective order (sacrebleu's sentence-level setting). Needs at least two texts.
    """
    from sacrebleu.metrics import BLEU

    if len(texts) < 2:
        raise WorkbenchError("Self-BLEU needs at least two outputs.")
    bleu = BLEU(effective_order=True)
    scores = [
        bleu.sentence_score(text, [t for j, t in enumerate(texts) if j != i]).score for i, text in enumerate(texts)
    ]
    return float(sum(scores) / len(scores))


def repetition_rate(text: str, n: int = 3) -> float:
    """rep-n (Welleck et al., 2019) of one text: 1 - unique n-grams / all n-grams; 0.0 when it has none.

    A model stuck in a loop scores near 1; varied prose near 0.
    """
    if n < 1:
        raise WorkbenchError(f"The n-gram order must be at least 1, not {n}.")
    tokens = _tokens(text)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0
