"""`python -m workbench compare-parent CHECKPOINT`: is a checkpoint better than the one it was trained from?

    python -m workbench compare-parent my-run/checkpoint-40     # against my-run/checkpoint-20, its previous save
    python -m workbench compare-parent dpo-run --json           # against the adapter the run started from

The parent is the run's previous saved checkpoint, else the adapter the run was trained from (`init_adapter`),
else the base model (`workbench.studio.lineage`); another served family's adapter `FAMILY/run` has its parent in
that family (`FAMILY/...` or `FAMILY`). Prints the verdict (better, worse or not yet known) and its
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
    p.add_argument("checkpoint", help="an adapter: run or run/checkpoint-N (another served family's: FAMILY/run...)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def run(args: argparse.Namespace) -> int:
    from workbench.store import Store
    from workbench.studio.lineage import compare_parent

    settings = Settings.from_env()
    with Store.open(settings) as store:
        report = compare_parent(settings, store, args.checkpoint)
    if args.json:
        print_json(report.as_dict())
    else:
        print(report.markdown())
    return 0
