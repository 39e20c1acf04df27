"""`python -m workbench prompts`: the prompt sets in the store, and loading the shipped ones.

    python -m workbench prompts                  # list the sets in the store with their sizes
    python -m workbench prompts --load           # add the shipped sets (vicuna-bench, mt-bench) if missing
    python -m workbench prompts --show mt-bench  # print the prompts of one set
    python -m workbench prompts --json           # one JSON object
    python -m workbench prompts --show visitor-prompts           # what visitors typed on the dashboard
    python -m workbench prompts --approve visitors-1 [--token T]  # serve them to raters, as the set visitors-1
    python -m workbench prompts --reject [--token T]              # delete them with the outputs made from them

The dashboard loads the shipped sets on its first start too; loading twice adds nothing. Prompts a visitor typed
wait in `visitor-prompts` and are not served to other raters until approved (workbench/store/visitors.py);
approving and rejecting are admin actions (--token when WORKBENCH_ADMIN_TOKEN is set).
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
    review = p.add_mutually_exclusive_group()
    review.add_argument(
        "--approve", metavar="NAME", help="serve the prompts visitors typed to raters, renamed to the set NAME (admin)"
    )
    review.add_argument(
        "--reject", action="store_true", help="delete the prompts visitors typed and the outputs made from them (admin)"
    )
    p.add_argument("--token", help="the admin token, when WORKBENCH_ADMIN_TOKEN is set")
    return p


def run(args: argparse.Namespace) -> int:
    from workbench.store import VISITOR_PROMPTS, Store
    from workbench.studio.promptsets import load_shipped

    with Store.open(Settings.from_env()) as store:
        review = None
        if args.approve:
            n = store.approve_visitor_prompts(args.approve, token=args.token)
            review = f"Approved {n} prompt{'' if n == 1 else 's'} visitors typed, as the prompt set {args.approve!r}."
        elif args.reject:
            store.delete_prompt_set(VISITOR_PROMPTS, token=args.token)
            review = "Deleted the prompts visitors typed and the outputs made from them."
        added = load_shipped(store) if args.load else []
        sets = store.prompt_sets()
        prompts = store.prompts(args.show) if args.show else None
    if args.json:
        out = {"added": added, "prompt_sets": [{k: s[k] for k in ("name", "size", "description")} for s in sets]}
        if review is not None:
            out["review"] = review
        if prompts is not None:
            out["prompts"] = [{k: p[k] for k in ("position", "text", "reference", "metadata")} for p in prompts]
        print_json(out)
        return 0
    if review is not None:
        print(review)
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
