"""`python -m workbench <command>`: the command line, thin over the library.

Each subcommand is one module here with `add_parser(subparsers)` (its flags) and `run(args) -> int`.
A `WorkbenchError` is printed as one sentence on stderr with exit code 2; nothing else is caught.
Adding a command is adding a module and its name to COMMANDS; a dashed command name is the module name with
underscores (`export-adapter` -> `export_adapter.py`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from workbench.errors import WorkbenchError

COMMANDS = ("chat", "models", "bench", "leaderboard", "export", "import", "score", "perplexity", "eval", "train")
COMMANDS += ("prompts", "export-adapter", "export-model")
COMMANDS += ("presets", "sweep")
COMMANDS += ("judge",)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="python -m workbench", description="Workbench for chat language models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"workbench.cli.{name.replace('-', '_')}")
        module.add_parser(sub).set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
