"""`python -m workbench compare-parent CHECKPOINT`: is a checkpoint better than the one it was trained from?

    python -m workbench compare-parent my-run/checkpoint-40     # against my-run/checkpoint-20, its previous save
    python -m workbench compare-parent dpo-run --json           # against the adapter the run started from

The parent is the run's previous saved checkpoint, else the adapter the run was trained from (`init_adapter`),
else the base model (`workbench.studio.lineage`). Prints the verdict (better, worse or not yet known) and its
evidence from the store: the Arena's Bradley-Terry difference with its 95% interval and the stopping rule's state,
the suites' metric deltas (with a paired bootstrap interval where per-item scores are stored), the like rate, each
LLM judge's win share on these pairs and its agreement with people there, and the rule that decided
(docs/verdict.md). `--json` prints one object: checkpoint, parent, relation, outcome, reason, decided_by, level,
rule, arena, signals (each with its 95% and Bonferroni-adjusted intervals), judges. Exit code 0 whatever the
verdict; 2 with one sentence for a checkpoint that is not a usable adapter.
"""

from __future__ import annotations

import argparse

from workbench.cli.common import print_json
from workbench.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("compare-parent", help="the verdict on a checkpoint against its parent, with its evidence")
    p.add_argument("checkpoint", help="an adapter: run or run/checkpoint-N")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _interval(pair) -> str:
    if not pair or pair[0] is None:
        return "no interval"
    return f"{pair[0]:+.4g} to {pair[1]:+.4g}"


def report_lines(report: dict) -> list[str]:
    """The report as lines of text (the JSON object's fields, for people)."""
    lines = [
        f"{report['checkpoint']} against {report['parent']} ({report['relation']}): {report['outcome'].upper()}",
        report["reason"],
        "",
        report["arena"]["summary"] if report["arena"] else "Arena: no votes.",
    ]
    level = f"{100 * report['level']:.2f}%"
    for s in report["signals"]:
        value = "" if s["delta"] is None else f"{s['child']:.4g} vs {s['parent']:.4g} (delta {s['delta']:+.4g}); "
        counted = f"says {s['says']} at {level}" if s["counted"] else "not counted"
        lines.append(f"- {s['name']}: {value}95% {_interval(s['interval_95'])}; {counted}. {s['note']}")
    for judge, agree in report["judges"].items():
        kappa = agree.get("kappa")
        lines.append(
            f"- {judge} against people on these pairs: {agree.get('comparisons', 0)} comparisons, kappa "
            + ("n/a" if kappa is None else f"{kappa:.2f}")
        )
    return [*lines, "", "Rule:", report["rule"]]


def run(args: argparse.Namespace) -> int:
    from workbench.store import Store
    from workbench.studio.lineage import compare_parent

    settings = Settings.from_env()
    with Store.open(settings) as store:
        report = compare_parent(settings, store, args.checkpoint).as_dict()
    if args.json:
        print_json(report)
    else:
        print("\n".join(report_lines(report)))
    return 0
