"""`python -m workbench promote CHECKPOINT`: make a checkpoint the default of this Space.

    python -m workbench promote my-run               # refused, with one sentence, when its verdict says worse
    python -m workbench promote my-run --force       # promoted anyway (the record says it was forced)
    python -m workbench promote base                 # back to the base model

The default is what a new visitor's chat starts on and what the Arena's settings pairs use; it is kept in
`<adapters folder>/.default.json` (`workbench.studio.promote`). Promoting an adapter first computes its verdict
against its parent (as `compare-parent` does) and writes its model card, README.md in the adapter's folder
(huggingface_hub's ModelCard: base model, peft, data and counts, hyperparameters, metrics, votes, the verdict,
`--license`). The shell is the owner's, so no admin token is asked. Exit code 2 with one sentence when refused.
"""

from __future__ import annotations

import argparse

from workbench.cli.common import print_json
from workbench.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("promote", help="make a checkpoint what new visitors get (refused when it is worse)")
    p.add_argument(
        "checkpoint", help="an adapter (run or run/checkpoint-N; another served family's FAMILY/run...), or base"
    )
    p.add_argument("--force", action="store_true", help="promote even when the verdict against its parent is worse")
    p.add_argument(
        "--license", help="the model card's licence, a Hub licence id (default: the base model's, else other)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def run(args: argparse.Namespace) -> int:
    from workbench.store import Store
    from workbench.studio.promote import promote

    settings = Settings.from_env()
    with Store.open(settings) as store:
        done = promote(settings, store, args.checkpoint, force=args.force, license=args.license)
    if args.json:
        print_json(done.as_dict())
    else:
        print(done.summary())
    return 0
