"""Run evaluation suites against checkpoints and store the results.

A checkpoint is "base" or an adapter name from the registry ("my-run/checkpoint-20"). Generation suites
generate through the real `ChatEngine` (the same code path as the chat); perplexity suites run the
engine's model with the adapter active (`ChatEngine.model_for`). Every metric becomes one `EvalResult`
with what is needed to reproduce it (signature, token counts, generation settings, SHA-256 of the model
and the data, dtype, device); generation suites keep each example's output and sentence scores.

    engine = ChatEngine.load(settings)
    results = run_suites(engine, ["shakespeare", "identity_heldout"], ["base", "my-run/checkpoint-20"])
    save_results(Store.open(settings), results)        # workbench.evaluation.results

From a training job, at every checkpoint save (loads the engine once per process, then reuses it):

    evaluate_checkpoint(settings, ["identity_heldout_ppl"], "my-run/checkpoint-20")
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.evaluation.fingerprints import file_sha256, model_sha256
from workbench.evaluation.results import EvalResult, save_results
from workbench.evaluation.suites import Example, Suite, find_suite
from workbench.registry import BASE_NAME, list_adapters

if TYPE_CHECKING:
    from workbench.evaluation.metrics.perplexity import Perplexity
    from workbench.generation.engine import ChatEngine
    from workbench.generation.router import Router


class Progress(Protocol):
    """What the runner reports to: `start` once per suite and checkpoint, then `update` as work is done."""

    def start(self, label: str, total: int) -> None: ...

    def update(self, n: int = 1) -> None: ...


class _Silent:
    def start(self, label: str, total: int) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass


def _prompt_text(messages: Sequence[dict[str, str]]) -> str:
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)


class _Run:
    """One suite on one checkpoint: the shared facts of its results, and the three kinds of work."""

    def __init__(self, engine: ChatEngine | Router, suite: Suite, checkpoint: str, progress: Progress) -> None:
        # A Router picks the engine of the checkpoint's model ("remote:NAME" is a remote model's).
        target, local = engine.route(checkpoint)
        self.engine, self.suite, self.checkpoint, self.progress = target, suite, local, progress
        adapter = target.resolve_adapter(local)
        combined, base_hash, adapter_hash = model_sha256(target.base, adapter)
        self.common: dict[str, Any] = {
            "suite": suite.name,
            "kind": suite.kind,
            "checkpoint": checkpoint or BASE_NAME,
            "stored_as": engine.store_name(checkpoint or BASE_NAME),
            "step": adapter.step if adapter else None,
            "model_hash": combined,
            "dataset_hash": file_sha256(suite.data),
            "created_at": time.time(),
        }
        self.details: dict[str, Any] = {
            "base_model": target.base.name,
            "base_sha256": base_hash,
            "adapter_sha256": adapter_hash,
            "data_file": suite.data.name,
            "suite_sha256": file_sha256(suite.spec) if suite.spec else None,
        }

    def result(self, metric: str, value: float, **fields: Any) -> EvalResult:
        details = {**self.details, **self.computed_by(metric), **fields.pop("details", {})}
        return EvalResult(**self.common, metric=metric, value=value, details=details, **fields)

    def computed_by(self, metric: str) -> dict[str, Any]:
        """What computed a metric: the backend that generated (BLEU, chrF), or the transformers model's dtype and
        device (perplexities, always on the transformers reference)."""
        if metric in ("bleu", "chrf"):
            return {"backend": self.engine.backend_name}
        loaded = self.engine.loaded
        return {"dtype": str(loaded.dtype).removeprefix("torch."), "device": str(loaded.device)}

    def text_perplexity(self) -> list[EvalResult]:
        from workbench.evaluation.metrics.perplexity import bos_token, perplexity_of_text, text_windows, tokenize_text

        suite, text, tokenizer = self.suite, self.suite.load_text(), self.engine.tokenizer
        windows = len(text_windows(tokenize_text(tokenizer, text), suite.window, suite.stride, bos_token(tokenizer)))
        self.progress.start(f"{suite.name} @ {self.checkpoint}", windows)
        with self.engine.model_for(self.checkpoint) as model:
            ppl = perplexity_of_text(
                model,
                self.engine.tokenizer,
                text,
                window=suite.window,
                stride=suite.stride,
                batch_size=suite.batch_size,
                progress=self.progress.update,
            )
        method = f"window:{ppl.window}|stride:{ppl.stride}|tokens:{ppl.predicted_tokens}|bytes:{ppl.bytes}"
        shared = {"signature": method, "num_examples": ppl.sequences, "num_tokens": ppl.predicted_tokens}
        details = {"details": ppl.to_dict()}
        return [
            self.result("perplexity", ppl.perplexity, **shared, **details),
            self.result("bits_per_byte", ppl.bits_per_byte, **shared, **details),
        ]

    def response_perplexity(self, examples: Sequence[Example], started: bool = False) -> EvalResult:
        from workbench.evaluation.metrics.perplexity import response_perplexity

        pairs = [(ex.prompt, ref) for ex in examples for ref in ex.references]
        if not started:
            self.progress.start(f"{self.suite.name} @ {self.checkpoint}", len(pairs))
        with self.engine.model_for(self.checkpoint) as model:
            ppl = response_perplexity(
                model, self.engine.tokenizer, pairs, batch_size=self.suite.batch_size, progress=self.progress.update
            )
        return self.result(
            "response_perplexity",
            ppl.perplexity,
            signature=f"responses:{self.suite.responses}|tokens:{ppl.predicted_tokens}",
            num_examples=len(pairs),
            num_tokens=ppl.predicted_tokens,
            details={"details": ppl.to_dict()},
            examples=_ppl_examples(examples, ppl),
        )

    def generation(self, examples: Sequence[Example]) -> list[EvalResult]:
        from workbench.evaluation.metrics.overlap import corpus_scores, sentence_scores, streams_from_examples

        suite = self.suite
        streams = streams_from_examples([ex.references for ex in examples])  # refuse uneven references first
        wants_ppl = "response_perplexity" in suite.metrics
        extra = sum(len(ex.references) for ex in examples) if wants_ppl else 0
        self.progress.start(f"{suite.name} @ {self.checkpoint}", len(examples) + extra)
        # Submitted together: llama.cpp decodes them in its slots, transformers in greedy batches.
        replies = self.engine.generate_many(
            [(ex.prompt, suite.generation, self.checkpoint) for ex in examples],
            progress=lambda done, total: self.progress.update(1),
        )
        outputs = [text for text, _ in replies]
        stats = [reply.to_dict() for _, reply in replies]
        overlap = [m for m in suite.metrics if m != "response_perplexity"]
        sentences = sentence_scores(outputs, streams, overlap) if overlap else []
        generated = sum(s["new_tokens"] for s in stats)
        results = []
        for score in corpus_scores(outputs, streams, overlap) if overlap else []:
            rows = [
                _generation_example(ex, out, st, sent[score.metric])
                for ex, out, st, sent in zip(examples, outputs, stats, sentences, strict=True)
            ]
            results.append(
                self.result(
                    score.metric,
                    score.score,
                    signature=score.signature,
                    num_examples=len(examples),
                    num_tokens=generated,
                    settings=suite.generation.to_dict(),
                    details={"verbose_score": score.verbose_score, "sacrebleu_name": score.name},
                    examples=rows,
                )
            )
        if wants_ppl:
            results.append(self.response_perplexity(examples, started=True))
        return results


def _generation_example(ex: Example, output: str, stats: dict[str, Any], score: float) -> dict[str, Any]:
    keep = ("prompt_tokens", "new_tokens", "finish_reason", "seed", "tokens_per_s", "total_s")
    return {
        "prompt": _prompt_text(ex.prompt),
        "hypothesis": output,
        "references": ex.references,
        "score": score,
        "id": ex.id,
        "messages": ex.prompt,
        **{k: stats.get(k) for k in keep},
    }


def _ppl_examples(examples: Sequence[Example], ppl: Perplexity) -> list[dict[str, Any]]:
    import math

    rows, at = [], 0
    for ex in examples:
        parts = ppl.per_sequence[at : at + len(ex.references)]
        at += len(ex.references)
        nll, tokens = sum(p[0] for p in parts), sum(p[1] for p in parts)
        rows.append(
            {
                "prompt": _prompt_text(ex.prompt),
                "references": ex.references,
                "score": math.exp(nll / tokens) if tokens else None,
                "id": ex.id,
                "total_nll": nll,
                "predicted_tokens": tokens,
            }
        )
    return rows


def run_suite(
    engine: ChatEngine | Router,
    suite: Suite | str,
    checkpoint: str,
    *,
    limit: int | None = None,
    progress: Progress | None = None,
) -> list[EvalResult]:
    """Evaluate one checkpoint on one suite; returns one result per metric (nothing is stored).

    Args:
        engine: The engine holding the base model, or a Router across models.
        suite: A `Suite` or a suite name from `evals/`.
        checkpoint: "base", an adapter name, or a remote model's "remote:NAME[/ADAPTER]" (with a Router).
        limit: Examples to use (None: the suite's own limit; 0: all).
        progress: Told about the work as it is done.
    """
    suite = find_suite(suite) if isinstance(suite, str) else suite
    run = _Run(engine, suite, checkpoint, progress or _Silent())
    if suite.kind == "perplexity":
        return run.text_perplexity()
    examples = suite.load_examples(limit)
    if suite.kind == "response_perplexity":
        return [run.response_perplexity(examples)]
    return run.generation(examples)


def run_suites(
    engine: ChatEngine | Router,
    suites: Sequence[Suite | str],
    checkpoints: Sequence[str],
    *,
    limit: int | None = None,
    progress: Progress | None = None,
) -> list[EvalResult]:
    """Every suite on every checkpoint (checkpoint by checkpoint, so each adapter is switched in once)."""
    resolved = [find_suite(s) if isinstance(s, str) else s for s in suites]
    if not resolved:
        raise WorkbenchError("Name at least one suite to run.")
    if not checkpoints:
        raise WorkbenchError("Name at least one checkpoint to evaluate.")
    return [
        r
        for ckpt in checkpoints
        for suite in resolved
        for r in run_suite(engine, suite, ckpt, limit=limit, progress=progress)
    ]


def run_checkpoints(settings: Settings, run: str, base: Any = None) -> list[str]:
    """ "base" followed by every checkpoint of training run `run`, by step (the points of a curve over training)."""
    found = [a for a in list_adapters(settings, base) if a.run == run and a.name != run]
    if not found:
        raise WorkbenchError(f"The training run {run!r} has no checkpoints in {settings.adapters_dir}.")
    broken = [a for a in found if not a.usable]
    if broken:
        raise WorkbenchError(f"Checkpoint {broken[0].name!r} cannot be used: {broken[0].reason}")
    return [BASE_NAME] + [a.name for a in sorted(found, key=lambda a: (a.step is None, a.step or 0))]


_ENGINES: dict[Settings, ChatEngine] = {}


def shared_engine(settings: Settings) -> ChatEngine:
    """One engine per settings in this process, loaded on first use (evaluating at every save loads once)."""
    from workbench.generation.engine import ChatEngine

    if settings not in _ENGINES:
        _ENGINES[settings] = ChatEngine.load(settings)
    return _ENGINES[settings]


def evaluate_checkpoint(
    settings: Settings, suites: Sequence[str | Suite], checkpoint: str, *, limit: int | None = None, store: bool = True
) -> list[EvalResult]:
    """Evaluate one checkpoint on named suites and store the results: the hook for a training job's saves.

    Call it after the checkpoint folder is complete (renamed into place), from one process only (rank 0
    under DDP). The engine is loaded once per process and kept; each call switches in the new adapter.

    Args:
        settings: Workbench settings (where adapters and the store are; the base model, device, dtype).
        suites: Suite names from `evals/` (or `Suite` objects).
        checkpoint: "base" or an adapter name such as "my-run/checkpoint-20".
        limit: Examples per suite (None: each suite's own limit; 0: all).
        store: Write the results to the store named by `settings.db_url`.

    Returns:
        One `EvalResult` per metric per suite, with `result_id` set when stored.
    """
    results = run_suites(shared_engine(settings), suites, [checkpoint], limit=limit)
    if store:
        from workbench.store import Store

        with Store.open(settings) as db:
            save_results(db, results)
    return results
