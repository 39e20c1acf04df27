"""Is a checkpoint better than the one it came from? Its parent, and every piece of evidence the store holds.

    lineage = parent_of(settings, "my-run/checkpoint-40")    # the previous saved checkpoint of the run
    report = compare_parent(settings, store, "my-run")        # the run's adapter against what it started from
    report.verdict.outcome; report.verdict.reason; report.as_dict()

A checkpoint's parent is what it was trained from, read from the run's workbench.json (`workbench.registry`):
- `run/checkpoint-N`: the run's previous saved checkpoint `run/checkpoint-M` (M < N); the first checkpoint's
  parent is the adapter the run started from (`init_adapter`, for a run trained on another adapter) or the base.
- `run` (the run's adapter, the checkpoint it chose at the end): what the whole run started from, its
  `init_adapter` or the base model (`run_start`).
The base model has no parent. Checkpoints are named as requests name them (`workbench.generation.router`): the
main family's `run` and `run/checkpoint-N`, another served family's `FAMILY/run` and `FAMILY/run/checkpoint-N`,
whose parents are of the same family (`FAMILY/run/checkpoint-M`, `FAMILY/START`, the base `FAMILY`). This module
is the one place that resolves such a name to its family and adapter (`find_checkpoint`) and reads what a run
started from (`started_from`); "Send to the Arena" (`workbench.studio.arena_send`) and promote use it. The
evidence, all read from the store under the checkpoints' store names (`workbench.generation.router.store_name`,
what the chat and the Arena write; the base model under its own name): the Arena's people
(`workbench.ratings.versus.arena_evidence`, on the leaderboard of checkpoints), the suites' metrics
(`workbench.evaluation.paired`), the chat's like rate and each LLM judge's verdicts on these pairs with its
agreement with people there. `workbench.ratings.verdict.decide` gives the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.evaluation.paired import MetricDelta, metric_deltas
from workbench.generation.router import REMOTE, choices, family_of, request_name, store_name
from workbench.ratings.verdict import Signal, Verdict, decide
from workbench.registry import BASE_NAME, Adapter, BaseModel, find_adapter, list_adapters, served_bases

PREVIOUS = "the run's previous saved checkpoint"
STARTED_FROM = "the adapter its run was trained from"
BASE = "the base model its run was trained on"


@dataclass(frozen=True)
class Lineage:
    """A checkpoint and its parent.

    Attributes:
        child: The checkpoint as requests and the store name it ("my-run/checkpoint-40", "gemma/my-run").
        parent: The parent as a request names it ("base", "my-run/checkpoint-20", "sft-run", "gemma").
        parent_store: The parent's name in the store (the base model's own name for "base").
        relation: How they are related, in words (PREVIOUS, STARTED_FROM or BASE).
        adapter: The child's adapter (its workbench.json in `adapter.meta`).
    """

    child: str
    parent: str
    parent_store: str
    relation: str
    adapter: Adapter = field(repr=False, compare=False)


def _step(name: str) -> int | None:
    tail = name.split("/", 1)[1] if "/" in name else ""
    return int(tail.removeprefix("checkpoint-")) if tail.startswith("checkpoint-") else None


def find_checkpoint(settings: Settings, checkpoint: str) -> tuple[BaseModel | None, Adapter]:
    """(its family, None for the main one; its usable adapter) for an adapter named as requests name it: "run",
    "run/checkpoint-N", or another served family's "FAMILY/run" and "FAMILY/run/checkpoint-N".

    Raises:
        WorkbenchError: A base model or a remote model's checkpoint, or no adapter of that name usable with its
            family's base model.
    """
    if (checkpoint or "").startswith(REMOTE):
        raise WorkbenchError(f"{checkpoint!r} is served by a remote model: only a local adapter has a lineage here.")
    main, *others = served_bases(settings)
    family, local = family_of(others, checkpoint or BASE_NAME)
    if local == BASE_NAME:
        raise WorkbenchError("The base model has no parent to compare with: name an adapter (run or run/checkpoint-N).")
    return family, find_adapter(settings, local, family or main)


def children(settings: Settings, names: Sequence[str] | None = None) -> list[str]:
    """The checkpoints among `names` (default: every one a request can name, `router.choices`) that have a parent
    here: the local adapters of every served family, as requests name them (not the base models nor remote ones)."""
    from workbench.gate.checkpoints import checkpoint_kind

    names = choices(settings) if names is None else names
    return [name for name in names if checkpoint_kind(name, settings) == "adapters"]


def started_from(adapter: Adapter) -> str | None:
    """The adapter the run of `adapter` was trained from (`init_adapter`, named within its family), None for a run
    trained on the base model."""
    meta = adapter.meta
    # A run records it beside its hyperparameters; an adapter folder written elsewhere may have only the latter.
    return meta.get("init_adapter") or (meta.get("hyperparameters") or {}).get("init_adapter") or None


def _lineage(settings: Settings, family: BaseModel | None, adapter: Adapter, parent: str, relation: str) -> Lineage:
    """`adapter` and its parent `parent` ("base" or an adapter of the same family), named as requests name them."""
    named = request_name(family, parent)
    return Lineage(request_name(family, adapter.name), named, store_name(settings, named), relation, adapter)


def run_start(settings: Settings, checkpoint: str) -> Lineage:
    """`checkpoint` and what its whole run started from: the adapter given as its `init_adapter`, else the base
    model of its family (for the run's adapter `run` this is `parent_of`).

    Raises:
        WorkbenchError: As `find_checkpoint`.
    """
    family, adapter = find_checkpoint(settings, checkpoint)
    return _start(settings, family, adapter)


def _start(settings: Settings, family: BaseModel | None, adapter: Adapter) -> Lineage:
    started = started_from(adapter)
    if started:
        return _lineage(settings, family, adapter, started, STARTED_FROM)
    return _lineage(settings, family, adapter, BASE_NAME, BASE)


def parent_of(settings: Settings, checkpoint: str) -> Lineage:
    """The parent of `checkpoint` (see the module docstring).

    Raises:
        WorkbenchError: The base model (it has no parent), or no usable adapter of that name.
    """
    family, adapter = find_checkpoint(settings, checkpoint)
    step = _step(adapter.name)
    if step is not None:
        earlier = [
            (s, a.name)
            for a in list_adapters(settings, family or served_bases(settings)[0])
            if a.run == adapter.run and a.usable and (s := _step(a.name)) is not None and s < step
        ]
        if earlier:
            return _lineage(settings, family, adapter, max(earlier)[1], PREVIOUS)
    return _start(settings, family, adapter)


@dataclass(frozen=True)
class Report:
    """The verdict on one checkpoint against its parent, and the evidence behind it.

    Attributes:
        lineage: The checkpoint and its parent.
        verdict: `workbench.ratings.verdict.Verdict` (outcome, reason, the Arena's evidence, the signals).
        judges: Per LLM judge that voted on these pairs: its agreement with people there (`judge_agreement`).
        metrics: The suites' metrics of both (`workbench.evaluation.paired.MetricDelta`), also among the signals.
    """

    lineage: Lineage
    verdict: Verdict
    judges: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: tuple[MetricDelta, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: checkpoint, parent, parent_store, relation, the verdict's fields, judges."""
        judges = {k: {n: _clean(v) for n, v in d.items()} for k, d in self.judges.items()}
        return {
            "checkpoint": self.lineage.child,
            "parent": self.lineage.parent,
            "parent_store": self.lineage.parent_store,
            "relation": self.lineage.relation,
            **self.verdict.as_dict(),
            "judges": judges,
        }

    def markdown(self) -> str:
        """The verdict, its evidence and the rule as Markdown (the app, the dashboard, the CLI, the model card)."""
        verdict, lineage = self.verdict, self.lineage
        lines = [
            f"**{verdict.outcome.capitalize()}**: `{lineage.child}` against its parent `{lineage.parent}` "
            f"({lineage.relation}).",
            "",
            verdict.reason,
            "",
            verdict.arena.summary() if verdict.arena is not None else "Arena: no votes.",
            "",
        ]
        level = f"{100 * verdict.level:.4g}%"
        rows = [
            (s.name, cell(s.child), cell(s.parent), cell(s.delta), _interval(s, 0.95), _says(s, verdict.level), s.note)
            for s in verdict.signals
        ]
        header = ("evidence", "child", "parent", "delta", "95% interval", f"says (at {level})", "note")
        lines += [markdown_table(rows, header) if rows else "No other evidence.", ""]
        for judge, agree in self.judges.items():
            kappa = agree.get("kappa")
            kappa_text = "n/a" if kappa is None or not math.isfinite(kappa) else f"{kappa:.2f}"
            lines.append(
                f"- {judge} against people on these pairs: {agree.get('comparisons', 0)} comparisons, agreement "
                f"{cell(agree.get('agreement_with_ties'))} with ties, Cohen's kappa {kappa_text}."
            )
        return "\n".join([*lines, "", "**The rule**", "", verdict.rule])


def markdown_table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    """A Markdown table (cells' pipes escaped)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return "\n".join(lines)


def cell(value: Any) -> str:
    """A value as a table cell: 4 significant figures for a float, empty for None or NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _interval(signal: Signal, level: float) -> str:
    if signal.interval is None:
        return ""
    lower, upper = signal.interval(level)
    return f"{lower:+.4g} to {upper:+.4g}"


def _says(signal: Signal, level: float) -> str:
    if not signal.counted:
        return "not counted"
    return {1: "child better", -1: "child worse", 0: "no difference shown"}[signal.direction(level)]


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _metric_signal(delta: MetricDelta) -> Signal:
    return Signal(
        delta.name,
        "metric",
        delta.child,
        delta.parent,
        delta.higher_is_better,
        delta.n,
        delta.interval,
        counted=delta.interval is not None,
        note=delta.note,
    )


def _pairs_between(sequence: Any, verdicts: Any, child: str, parent: str) -> set[tuple[int, int]]:
    """The (generation_a_id, generation_b_id) of every vote that put child beside parent."""
    if sequence.empty or verdicts.empty:
        return set()
    sides = sequence[["model_a", "model_b"]].to_numpy()
    between = set(sequence["vote_id"][[{a, b} == {child, parent} for a, b in sides]])
    mine = verdicts[verdicts["vote_id"].isin(between)]
    return set(zip(mine["generation_a_id"], mine["generation_b_id"], strict=True))


def compare_parent(settings: Settings, store: Any, checkpoint: str) -> Report:
    """The verdict on `checkpoint` against its parent from everything the store holds (see the module docstring)."""
    from workbench.ratings import versus
    from workbench.ratings.leaderboard import contestants, filter_ratings
    from workbench.ratings.snapshot import snapshot

    lineage = parent_of(settings, checkpoint)
    child, parent = lineage.child, lineage.parent_store
    snap = snapshot(store)
    people = contestants(filter_ratings(snap.tallies, rater_kind="humans"))
    arena = versus.arena_evidence(people, child, parent, half_width=settings.settle_half_width or None)
    deltas = tuple(metric_deltas(store, child, parent))
    signals = [_metric_signal(d) for d in deltas]
    signals.append(versus.like_signal(store.reactions(), child, parent))
    verdicts = store.pair_verdicts()
    pairs = _pairs_between(snap.sequence, verdicts, child, parent)
    judged = contestants(filter_ratings(snap.tallies, rater_kind="judges"))
    names = sorted(judged["judge"].dropna().unique()) if len(judged) else []
    agreements = {judge: versus.agreement_on_pairs(verdicts, pairs, judge) for judge in names}
    judges = versus.judge_signals(judged, agreements, child, parent)
    signals += judges
    shown = {s.name.removesuffix("'s win share") for s in judges}  # the judges that voted on these two
    return Report(lineage, decide(arena, signals), {j: a for j, a in agreements.items() if j in shown}, deltas)
