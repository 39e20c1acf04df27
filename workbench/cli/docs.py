"""`workbench docs`: write docs/reference.md from the code, so the reference cannot drift from it.

    workbench docs            # rewrite docs/reference.md
    workbench docs --check    # exit 1 with a sentence when the committed file is stale (tests/test_docs.py does this)

The page has four parts, each read from its one declaration: every setting (`workbench.config.reference()`:
variable, default, meaning), every command with its flags (the argparse parser `workbench --help` uses), every
training hyperparameter (JobConfig's declarations: flag, form label, default, bounds, meaning), and every parameter
the OpenAI-compatible API takes (`workbench.api.params`). Only texts
written in the code go in, never a value computed on this machine (no absolute paths), so every checkout renders
the same page.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.config import REPO_ROOT
from workbench.errors import WorkbenchError

REFERENCE = REPO_ROOT / "docs" / "reference.md"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("docs", help="write docs/reference.md from the code (settings, commands, hyperparameters)")
    p.add_argument("--check", action="store_true", help="only check that docs/reference.md is current (exit 1 if not)")
    p.add_argument("--out", help="write here instead of docs/reference.md")
    return p


def run(args: argparse.Namespace) -> int:
    text = render()
    target = Path(args.out) if args.out else REFERENCE
    if args.check:
        current = target.read_text(encoding="utf-8") if target.is_file() else ""
        if current != text:
            print(f"{target.name} is out of date: run `workbench docs` and commit it.", file=sys.stderr)
            return 1
        print(f"{target.name} is current.")
        return 0
    if target.exists() and not target.is_file():
        raise WorkbenchError(f"{target} is not a file.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")  # never a half-written page
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    print(f"Wrote {target}.")
    return 0


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def render() -> str:
    """The whole reference page, as Markdown."""
    lines = [
        "# Reference",
        "",
        "Generated from the code by `workbench docs` (`make docs`); do not edit by hand: `tests/test_docs.py` fails "
        "when this page and the code disagree.",
        "",
        "- [Settings](#settings)",
        "- [Commands](#commands)",
        "- [Training hyperparameters](#training-hyperparameters)",
        "- [API parameters](#api-parameters)",
        "",
    ]
    return "\n".join(lines + _settings() + _commands() + _hyperparameters() + _api_parameters()) + "\n"


def _settings() -> list[str]:
    from workbench.config import reference

    rows = [(f"`{r['variable']}`", r["default"], r["help"]) for r in reference()]
    intro = [
        "## Settings",
        "",
        "Environment variables, read when a command or the app starts (`workbench/config.py` declares each once).",
        "",
    ]
    return [*intro, *_table(("variable", "default", "meaning"), rows), ""]


def _flag_rows(parser: argparse.ArgumentParser) -> list[tuple[str, str, str]]:
    formatter = parser._get_formatter()
    rows = []
    for group in parser._action_groups:
        for action in group._group_actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
                continue
            names = ", ".join(action.option_strings) or action.dest
            if action.nargs != 0:
                metavar = action.metavar or (action.dest.upper() if action.option_strings else "")
                names = f"{names} {metavar}".strip() if action.option_strings else names
            text = formatter._expand_help(action) if action.help and "%(" in action.help else action.help or ""
            title = "" if group.title in ("options", "positional arguments") else group.title
            rows.append((f"`{names}`", title, text))
    return rows


def _commands() -> list[str]:
    from workbench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    lines = [
        "## Commands",
        "",
        "`workbench COMMAND --help` prints the same. After `make install` the command is `.venv/bin/workbench` "
        "(or `workbench` in the activated environment; `python -m workbench` is the same program).",
        "",
        *_table(("command", "what it does"), [(f"[`{n}`](#workbench-{n})", helps[n]) for n in sub.choices]),
        "",
    ]
    for name, command in sub.choices.items():
        lines += [f"### workbench {name}", "", f"{helps[name]}.", ""]
        lines += [*_table(("flag", "group", "meaning"), _flag_rows(command)), ""]
    return lines


def _hyperparameters() -> list[str]:
    from workbench.training import hparams
    from workbench.training.config import DEMO_SETTINGS, JobConfig

    rows = []
    for f, spec in hparams.declared(JobConfig):
        default = ",".join(f.default) if isinstance(f.default, tuple) else f.default
        demo = DEMO_SETTINGS.get(f.name, "")
        form = spec.label if spec.form else f"not on the form: {spec.why_not}"
        rows.append(
            (
                f"`{f.name}`",
                spec.section,
                f"`{hparams.flag(f.name)}`",
                form,
                default,
                demo,
                spec.bounds_text(),
                spec.help,
            )
        )
    intro = [
        "## Training hyperparameters",
        "",
        "Declared once each on `JobConfig` (`workbench/training/config.py`): `workbench train` has the flag, the "
        "Fine-tune tab the labelled component (its elem_id is `ft-` and the name with dashes), and the app's "
        '`train` endpoint takes each by its name (`client.predict(..., max_steps=40, api_name="/train")`). The '
        "Fine-tune tab and `make finetune-demo` start from the demo column; the CLI from the default column.",
        "",
    ]
    header = ("name", "section", "flag", "form label", "default", "demo", "bounds", "meaning")
    return [*intro, *_table(header, rows), ""]


def _api_parameters() -> list[str]:
    from workbench.api.params import reference_rows

    rows = [(f"`{r['parameter']}`", r["endpoints"], r["accepts"], r["meaning"]) for r in reference_rows()]
    intro = [
        "## API parameters",
        "",
        "What `POST /v1/chat/completions` (chat) and `POST /v1/completions` (completions) take, declared once in "
        "`workbench/api/params.py`; any other parameter, a wrong type or a value out of bounds is refused with a 400 "
        "naming it ([docs/api.md](api.md)). Null is the same as leaving a parameter out.",
        "",
    ]
    return [*intro, *_table(("parameter", "endpoints", "accepts", "meaning"), rows), ""]
