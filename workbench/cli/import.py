"""`python -m workbench import`: read generations, votes, Likert scores, chat feedback or corrections written by
`export`.

    python -m workbench import --what generations generations.jsonl
    python -m workbench import --what votes votes.csv --token "$WORKBENCH_ADMIN_TOKEN"

Import the generations before the ratings that point at them. Rows already in the store (same generation
uid, same rating key) are skipped, so importing a file twice adds nothing. A bad line is reported with its
number (exit code 2). When WORKBENCH_ADMIN_TOKEN is set, pass the same value with --token.
"""

from __future__ import annotations

import argparse

from workbench.config import Settings

# As workbench.store.export.IMPORTS, without importing the store.
IMPORTS = ("generations", "votes", "likert", "feedback", "corrections", "rater_status")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("import", help="import generations, votes or Likert scores from an exported file")
    p.add_argument("--what", required=True, choices=IMPORTS, help="what the file holds")
    p.add_argument("file", metavar="FILE", help=".jsonl or .csv file written by `export`")
    p.add_argument("--token", help="the admin token, when WORKBENCH_ADMIN_TOKEN is set")
    return p


def run(args: argparse.Namespace) -> int:
    from workbench.store import Store

    with Store.open(Settings.from_env()) as store:
        n = store.import_file(args.what, args.file, token=args.token)
    print(f"Imported {n} new {args.what} records from {args.file}.")
    return 0
