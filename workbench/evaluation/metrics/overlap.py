"""BLEU and chrF with sacrebleu: corpus scores with their signatures, and per-example sentence scores.

The headline number is the corpus score (n-gram statistics summed over all examples, then combined), with
sacrebleu's defaults: BLEU with 13a tokenisation and exponential smoothing, chrF with character 6-grams
and beta 2. Every score carries sacrebleu's full signature string, which names every setting and the
sacrebleu version, so a number can be reproduced with `sacrebleu REF -i HYP -m bleu chrf`.

References come as sacrebleu lays them out: a list of reference *streams*, each with one reference per
hypothesis (two reference files = two streams). Every example must have the same number of references.

    scores = corpus_scores(hyps, [refs_a, refs_b], metrics=("bleu", "chrf"))
    scores[0].score, scores[0].signature     # 31.84..., "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
    sentence_scores(hyps, [refs_a])          # per example, for the dashboard's per-example view
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from workbench.errors import WorkbenchError

METRICS = ("bleu", "chrf")


@dataclass(frozen=True)
class CorpusScore:
    """One corpus-level score.

    Attributes:
        metric: "bleu" or "chrf" (our name).
        name: sacrebleu's name ("BLEU", "chrF2").
        score: The score, 0 to 100, unrounded.
        signature: sacrebleu's full signature, e.g. "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0".
        verbose_score: sacrebleu's detail line (BLEU: n-gram precisions, brevity penalty, lengths).
        examples: How many hypotheses were scored.
        references: References per example.
    """

    metric: str
    name: str
    score: float
    signature: str
    verbose_score: str
    examples: int
    references: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _metric(name: str, sentence: bool = False) -> Any:
    from sacrebleu.metrics import BLEU, CHRF

    if name == "bleu":
        # sacrebleu's sentence-level mode turns effective order on (its CLI does the same with -sl),
        # so a short sentence without 4-gram matches is not scored 0 outright.
        return BLEU(effective_order=sentence)
    if name == "chrf":
        return CHRF()
    raise WorkbenchError(f"Unknown metric {name!r}; choose from {', '.join(METRICS)}.")


def check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    """Lower-cased metric names, each known and listed once."""
    out: list[str] = []
    for name in metrics:
        low = str(name).strip().lower()
        if low not in METRICS:
            raise WorkbenchError(f"Unknown metric {name!r}; choose from {', '.join(METRICS)}.")
        if low not in out:
            out.append(low)
    if not out:
        raise WorkbenchError(f"Name at least one metric ({', '.join(METRICS)}).")
    return tuple(out)


def check_references(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    """Raise WorkbenchError unless there are hypotheses and every reference stream matches them one to one."""
    if isinstance(hypotheses, str) or not all(isinstance(h, str) for h in hypotheses):
        raise WorkbenchError("Hypotheses must be a list of strings.")
    if not references:
        raise WorkbenchError("Give at least one set of references.")
    counts = [len(stream) for stream in references]
    if not hypotheses:
        raise WorkbenchError(f"There are no hypotheses to score (the references have {counts[0]} lines).")
    for i, (stream, n) in enumerate(zip(references, counts, strict=True), start=1):
        if isinstance(stream, str) or not all(isinstance(r, str) for r in stream):
            raise WorkbenchError(f"Reference set {i} must be a list of strings.")
        if n != len(hypotheses):
            raise WorkbenchError(
                f"Reference set {i} has {n} references but there are {len(hypotheses)} hypotheses; "
                "every example needs the same number of references, one per set."
            )


def streams_from_examples(references: Sequence[Sequence[str]]) -> list[list[str]]:
    """Per-example reference lists -> sacrebleu's reference streams; every example needs the same count."""
    counts = {len(refs) for refs in references}
    if len(counts) > 1:
        first = next(i for i, refs in enumerate(references) if len(refs) != len(references[0]))
        raise WorkbenchError(
            f"Example {first + 1} has {len(references[first])} references but example 1 has "
            f"{len(references[0])}; every example needs the same number of references."
        )
    if not references or counts == {0}:
        raise WorkbenchError("Every example needs at least one reference.")
    return [list(stream) for stream in zip(*references, strict=True)]


def corpus_scores(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], metrics: Sequence[str] = METRICS
) -> list[CorpusScore]:
    """Corpus-level scores of `hypotheses` against reference streams, one per metric, in the order asked.

    Args:
        hypotheses: One output per example.
        references: Reference streams (one list per reference set, each as long as `hypotheses`).
        metrics: Any of "bleu", "chrf".
    """
    names = check_metrics(metrics)
    check_references(hypotheses, references)
    out = []
    for name in names:
        metric = _metric(name)
        score = metric.corpus_score(list(hypotheses), [list(s) for s in references])
        verbose = score._verbose  # the detail line sacrebleu prints; no public accessor
        out.append(
            CorpusScore(
                metric=name,
                name=score.name,
                score=float(score.score),
                signature=str(metric.get_signature().format(short=False)),
                verbose_score=verbose,
                examples=len(hypotheses),
                references=len(references),
            )
        )
    return out


def sentence_signature(metric: str, references: int = 1) -> str:
    """The signature of the per-example scores of `metric` with `references` references (BLEU's has eff:yes)."""
    scorer = _metric(metric, sentence=True)
    scorer.sentence_score("a", ["a"] * references)  # the signature records nrefs only after a call
    return str(scorer.get_signature().format(short=False))


def sentence_scores(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], metrics: Sequence[str] = METRICS
) -> list[dict[str, float]]:
    """Per-example scores, `[{"bleu": ..., "chrf": ...}, ...]`, for the per-example view (not the headline).

    Sentence BLEU uses effective order, as sacrebleu's `--sentence-level` does.
    """
    names = check_metrics(metrics)
    check_references(hypotheses, references)
    scorers = {name: _metric(name, sentence=True) for name in names}
    rows = []
    for i, hyp in enumerate(hypotheses):
        refs = [stream[i] for stream in references]
        rows.append({name: float(scorer.sentence_score(hyp, refs).score) for name, scorer in scorers.items()})
    return rows


def resampled_scores(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], metric: str, draws: Any
) -> list[float]:
    """The corpus score of each resample of the examples: `draws` is a (resamples x examples) array of how many
    times each example is drawn, shared between two systems for a paired bootstrap (Koehn 2004).

    Why sacrebleu's private methods: its own paired test (`sacrebleu.significance`) extracts each example's
    sufficient statistics once and sums them per resample exactly so, but only prints p-values, not the interval
    of a difference; re-scoring 1,000 corpora from text would take minutes.
    """
    import numpy as np

    name = check_metrics([metric])[0]
    check_references(hypotheses, references)
    scorer = _metric(name)
    stats = np.asarray(scorer._extract_corpus_statistics(list(hypotheses), [list(s) for s in references]), float)
    sums = np.asarray(draws, dtype=float) @ stats
    return [float(scorer._compute_score_from_stats(row.tolist()).score) for row in sums]
