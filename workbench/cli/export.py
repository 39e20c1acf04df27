"""`python -m workbench export`: write ratings or generations from the store to a JSONL or CSV file.

    python -m workbench export --what votes --format csv --out votes.csv
    python -m workbench export --what battles --out battles.jsonl        # FastChat clean-battle form
    python -m workbench export --what preferences --out dpo.jsonl        # TRL DPO pairs (prompt/chosen/rejected)
    python -m workbench export --what preferences --source chat --out regenerated.jsonl   # the chat's pairs only
    python -m workbench export --what feedback --out feedback.jsonl      # the chat's likes, dislikes, pairs
    python -m workbench export --what corrections --out sft.jsonl        # edited replies as SFT examples
    python -m workbench export --what preferences --source edit --out edits.jsonl   # corrected over original

--what is one of generations, votes, likert, battles, preferences, feedback, corrections, rater_status (the owner's
drops of raters). votes and preferences hold the Arena's blind votes and the chat's regenerate pairs (a reply
regenerated and kept), each with its `source`; preferences also hold the chat's corrections (a reply a person
edited: the corrected text preferred, source edit); --source arena, chat or edit keeps one of them. When
WORKBENCH_ADMIN_TOKEN is set, pass
the same value with --token. The format defaults to the --out file's suffix (jsonl otherwise).
"""

from __future__ import annotations

import argparse

from workbench.config import Settings

# Kept here rather than imported from workbench.store.export so that building the CLI parser stays light.
EXPORTS = ("generations", "votes", "likert", "battles", "preferences", "feedback", "corrections", "rater_status")
SOURCES = ("all", "arena", "chat", "edit")
FORMATS = ("jsonl", "csv")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "export",
        help="export votes, Likert scores, generations, battles, DPO preferences, chat feedback or corrections",
    )
    p.add_argument("--what", required=True, choices=EXPORTS, help="what to export")
    p.add_argument(
        "--source",
        choices=SOURCES,
        default="all",
        help="votes and preferences: the Arena's votes (arena), the chat's regenerate pairs (chat), the chat's "
        "corrections (edit: preferences only), or all",
    )
    p.add_argument("--format", choices=FORMATS, help="jsonl or csv (default: from --out's suffix, else jsonl)")
    p.add_argument("--out", required=True, metavar="FILE", help="file to write")
    p.add_argument("--token", help="the admin token, when WORKBENCH_ADMIN_TOKEN is set")
    return p


def run(args: argparse.Namespace) -> int:
    from workbench.safety.names import export_target
    from workbench.store import Store

    out = export_target(args.out, "export file")  # no '..', no hidden file, never through a symlink
    fmt = args.format or ("csv" if out.suffix.lower() == ".csv" else "jsonl")
    with Store.open(Settings.from_env()) as store:
        n = store.export(args.what, fmt, out, token=args.token, source=args.source)
    print(f"Wrote {n} {args.what} records to {out}.")
    return 0
