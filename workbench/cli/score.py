"""`python -m workbench score`: corpus BLEU and chrF of outputs made anywhere, with sacrebleu's signatures.

    python -m workbench score --hypotheses hyps.txt --references refs.txt --json
    python -m workbench score --hypotheses hyps.txt --references refs_a.txt --references refs_b.txt \\
        --metric bleu --metric chrf --sentence

Files hold one segment per line, as for sacrebleu's CLI (`sacrebleu refs.txt -i hyps.txt -m bleu chrf`), and
the scores equal its scores, signature included. `--sentence` adds each example's sentence BLEU/chrF.
"""

from __future__ import annotations

import argparse

from workbench.cli.common import print_json
from workbench.errors import WorkbenchError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("score", help="corpus BLEU/chrF of a hypotheses file against reference files (sacrebleu)")
    p.add_argument("--hypotheses", "-i", required=True, help="outputs, one per line")
    p.add_argument(
        "--references", "-r", action="append", required=True, help="references, one per line; repeat for more sets"
    )
    p.add_argument("--metric", "-m", action="append", default=None, help="bleu or chrf; repeat (default: both)")
    p.add_argument("--sentence", action="store_true", help="also score every example on its own")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def run(args: argparse.Namespace) -> int:
    from workbench.evaluation.metrics.overlap import (
        METRICS,
        check_metrics,
        corpus_scores,
        sentence_scores,
        sentence_signature,
    )
    from workbench.evaluation.metrics.textfiles import read_lines

    metrics = check_metrics(args.metric or METRICS)
    hypotheses = read_lines(args.hypotheses)
    references = [read_lines(path) for path in args.references]
    if not hypotheses:
        n = len(references[0])
        raise WorkbenchError(f"The hypotheses file {args.hypotheses} is empty, but the references have {n} lines.")
    for path, stream in zip(args.references, references, strict=True):
        if len(stream) != len(hypotheses):
            raise WorkbenchError(
                f"The references file {path} has {len(stream)} lines but the hypotheses file has "
                f"{len(hypotheses)}; every example needs one line in each file."
            )
    scores = corpus_scores(hypotheses, references, metrics)
    sentences = sentence_scores(hypotheses, references, metrics) if args.sentence else None
    if args.json:
        out = {
            "hypotheses": args.hypotheses,
            "references": args.references,
            "examples": len(hypotheses),
            "scores": [s.to_dict() for s in scores],
        }
        if sentences is not None:
            out["sentence_signatures"] = {m: sentence_signature(m, len(references)) for m in metrics}
            out["sentences"] = sentences
        print_json(out)
        return 0
    for s in scores:
        print(f"{s.name}|{s.signature} = {s.score:.2f} {s.verbose_score}".rstrip())
    for i, row in enumerate(sentences or [], start=1):
        print(f"{i}\t" + "\t".join(f"{m}={v:.2f}" for m, v in row.items()))
    return 0
