"""Evaluation results: `EvalResult` (one metric of one suite on one checkpoint) and how it goes into the store:
one row per metric, the examples behind it, and the outputs as generations.

    from workbench.evaluation.results import save_results
    save_results(Store.open(settings), results)   # results from workbench.evaluation.runner.run_suites

Outputs of generation suites are stored as ordinary generations too (checkpoint, prompt, exact settings,
seed, token counts), so the dashboard can show them next to chat outputs and raters can judge them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class EvalResult:
    """One metric of one suite on one checkpoint.

    Attributes:
        suite: Suite name.
        kind: The suite's kind.
        checkpoint: The checkpoint as named in the request ("base" or an adapter name).
        stored_as: Its name in the store: the base model's name for "base", else the adapter name.
        step: Training step of an adapter checkpoint; None for the base model.
        metric: "perplexity", "bits_per_byte", "response_perplexity", "bleu" or "chrf".
        value: The number (corpus level for BLEU/chrF).
        signature: sacrebleu's signature for BLEU/chrF; for perplexity a short description of the method.
        num_examples: Examples (or windows, for text perplexity) scored.
        num_tokens: Tokens predicted (perplexity) or generated (generation suites).
        settings: Generation settings, for generation suites.
        model_hash: SHA-256 of the weights (base, or base+adapter).
        dataset_hash: SHA-256 of the suite's data file.
        details: Everything else: mean NLL, bytes, window, stride, dtype, device, timings, separate hashes.
        created_at: Epoch seconds when the suite ran.
        examples: Per-example rows (prompt, hypothesis, references, score, metadata) for the store.
        result_id: The store's id once saved.
    """

    suite: str
    kind: str
    checkpoint: str
    stored_as: str
    step: int | None
    metric: str
    value: float
    signature: str | None = None
    num_examples: int | None = None
    num_tokens: int | None = None
    settings: dict[str, Any] | None = None
    model_hash: str | None = None
    dataset_hash: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    examples: list[dict[str, Any]] = field(default_factory=list, repr=False)
    result_id: int | None = None

    def to_dict(self, examples: bool = False) -> dict[str, Any]:
        """A JSON-ready dict; the per-example rows only when asked for."""
        data = asdict(self)
        if not examples:
            data.pop("examples")
        return data


def _store_generation(store: Any, result: EvalResult, row: dict[str, Any]) -> int:
    """The generation id for one suite output: the stored one when the same request gave the same text."""
    found = store.find_generation(row["messages"], result.stored_as, result.settings)
    if found is not None and found.output == row["hypothesis"]:
        return found.id
    stats = {k: row.get(k) for k in ("prompt_tokens", "new_tokens", "finish_reason", "seed", "tokens_per_s", "total_s")}
    return store.add_generation(
        result.stored_as,
        row["messages"],
        row["hypothesis"],
        result.settings,
        stats=stats,
        base_model=result.details.get("base_model"),
        metadata={"suite": result.suite, "example_id": row["id"], "model_hash": result.model_hash},
    )


def save_results(store: Any, results: Sequence[EvalResult]) -> None:
    """Write results and their per-example rows to the store (`workbench.store.Store`), setting `result_id`.

    Outputs of generation suites are also stored as generations (one per example, re-used when the same
    request already gave the same text), so they can be read, compared and rated like any other output;
    each example row records its `generation_id`.
    """
    generations: dict[tuple[str, str, str], int] = {}
    for r in results:
        store.upsert_checkpoint(r.stored_as, base_model=r.details.get("base_model"), step=r.step)
        rows = [dict(row) for row in r.examples]
        if r.kind == "generation" and r.metric != "response_perplexity":
            for row in rows:
                key = (r.stored_as, r.suite, row["id"])
                if key not in generations:
                    generations[key] = _store_generation(store, r, row)
                row["generation_id"] = generations[key]
        r.result_id = store.add_eval_result(
            r.suite,
            r.stored_as,
            r.metric,
            r.value,
            step=r.step,
            signature=r.signature,
            num_examples=r.num_examples,
            num_tokens=r.num_tokens,
            settings=r.settings,
            model_hash=r.model_hash,
            dataset_hash=r.dataset_hash,
            base_model=r.details.get("base_model"),
            metadata={"kind": r.kind, "checkpoint": r.checkpoint, **r.details},
            created_at=r.created_at,
        )
        if rows:
            store.add_eval_examples(r.result_id, rows)
