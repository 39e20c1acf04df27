"""Evaluation results into the store: one row per metric, the examples behind it, and the outputs as generations.

    from workbench.evalstore import save_results
    save_results(Store.open(settings), results)   # results from workbench.evaluate.run_suites

Outputs of generation suites are stored as ordinary generations too (checkpoint, prompt, exact settings,
seed, token counts), so the dashboard can show them next to chat outputs and raters can judge them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workbench.evaluate import EvalResult


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
