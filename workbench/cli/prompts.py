"""`python -m workbench prompts`: the prompt sets in the store, and loading the shipped ones.

    python -m workbench prompts                  # list the sets in the store with their sizes
    python -m workbench prompts --load           # add the shipped sets (vicuna-bench, mt-bench) if missing
    python -m workbench prompts --show mt-bench  # print the prompts of one set
    python -m workbench prompts --json           # one JSON object

The dashboard loads the shipped sets on its first start too; loading twice adds nothing.
"""

from __future__ import annotations

import argparse

from workbench.cli.common import print_json
from workbench.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("prompts", help="list prompt sets; load the shipped ones (vicuna-bench, mt-bench)")
    p.add_argument("--load", action="store_true", help="add the shipped prompt sets that the store lacks")
    p.add_argument("--show", metavar="SET", help="print the prompts of one set")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def run(args: argparse.Namespace) -> int:
    from workbench.store import Store
    from workbench.studio.promptsets import load_shipped

    with Store.open(Settings.from_env()) as store:
        added = load_shipped(store) if args.load else []
        sets = store.prompt_sets()
        prompts = store.prompts(args.show) if args.show else None
    if args.json:
        out = {"added": added, "prompt_sets": [{k: s[k] for k in ("name", "size", "description")} for s in sets]}
        if prompts is not None:
            out["prompts"] = [{k: p[k] for k in ("position", "text", "reference", "metadata")} for p in prompts]
        print_json(out)
        return 0
    if args.load:
        print(f"Added {', '.join(added)}." if added else "The shipped prompt sets are already in the store.")
    if prompts is not None:
        for p in prompts:
            print(f"{p['position'] + 1:>3}. {p['text']}")
        return 0
    if not sets:
        print("No prompt sets in the store yet; `python -m workbench prompts --load` adds the shipped ones.")
    for s in sets:
        print(f"{s['name']:<20} {s['size']:>4} prompts  {s['description'] or ''}")
    return 0
