"""Evaluation metrics as pure functions: perplexity (text and responses), BLEU/chrF (sacrebleu), diversity.

- `perplexity`: `perplexity_of_text` (non-overlapping windows, or the sliding-window method with a
  stride) and `response_perplexity` (assistant tokens of chat examples, conditioned on the prompt).
  torch is imported inside the functions that run a model.
- `overlap`: `corpus_scores` (corpus BLEU/chrF with sacrebleu's signature) and `sentence_scores`.
- `diversity`: distinct-n and self-BLEU over a set of outputs.
- `textfiles`: strict UTF-8 reading, and sacrebleu-compatible line reading.
"""

from workbench.evaluation.metrics.diversity import distinct_n, self_bleu
from workbench.evaluation.metrics.overlap import (
    METRICS,
    CorpusScore,
    corpus_scores,
    sentence_scores,
    streams_from_examples,
)
from workbench.evaluation.metrics.perplexity import Perplexity, perplexity_of_text, response_perplexity, text_windows
from workbench.evaluation.metrics.textfiles import read_lines, read_text

__all__ = [
    "METRICS",
    "CorpusScore",
    "Perplexity",
    "corpus_scores",
    "distinct_n",
    "perplexity_of_text",
    "read_lines",
    "read_text",
    "response_perplexity",
    "self_bleu",
    "sentence_scores",
    "streams_from_examples",
    "text_windows",
]
