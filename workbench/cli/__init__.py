"""`workbench <command>` (or `python -m workbench <command>`): the command line, thin over the library.

Each subcommand is one module here with `add_parser(subparsers)` (its flags) and `run(args) -> int`; the
commands are the modules this package holds (a dashed command name is the module name with underscores:
`export-adapter` -> `export_adapter.py`), so adding a command is adding its module, and `--help` lists it.
Modules that are not commands are named in HELPERS. A `WorkbenchError` is printed as one sentence on stderr with
exit code 2; nothing else is caught. The `workbench` console script (pyproject.toml) calls `main`.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from workbench.errors import WorkbenchError

HELPERS = ("common",)  # shared flags and helpers, not commands


def commands() -> dict[str, ModuleType]:
    """Every command, by name (sorted), with its module: every module of this package but HELPERS."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in HELPERS)
    return {name.replace("_", "-"): importlib.import_module(f"{__name__}.{name}") for name in names}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command registered."""
    parser = argparse.ArgumentParser(prog="workbench", description="Workbench for chat language models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in commands().items():
        sub_parser = module.add_parser(sub)
        if sub_parser.prog.split()[-1] != name:
            raise RuntimeError(f"{module.__name__} registers {sub_parser.prog!r}, not the command {name!r}")
        sub_parser.set_defaults(handler=module.run)
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
