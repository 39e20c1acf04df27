"""`python -m workbench models`: base models and adapters on disk, with status (no model is loaded).

python -m workbench models          # a table
python -m workbench models --json   # {"base", "backend", "served", "checkpoints", "policy", "bases", "adapters"}

With several families served at once (WORKBENCH_MODEL="a,b", registry.yaml's `serve: true`), `served` names them
(the main one first, marked * in the table, the others +), `checkpoints` is every name a request can use across
them ("base", "my-run", "gemma", "gemma/its-run", "remote:NAME"), and `policy` is the memory and cores policy
(docs/models.md).

A remote model (registry.yaml, `backend: openai`) is asked for its model list, so each says whether its
server answers, what it serves, or why not. Each usable base also says what it is (`info`): family, context
window, chat template ("own", "none" for a base model served in completion mode, "server"), and whether its
texts start with BOS.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from workbench.cli.common import add_model_flags, print_json, settings_from
from workbench.errors import WorkbenchError
from workbench.generation.backends import choose_backend
from workbench.registry import list_adapters, list_bases, resolve_base


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("models", help="list base models and adapters with their status")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_model_flags(p)
    return p


def _remote_status(base, settings) -> dict:
    """Whether a remote model's server answers and what it serves (a key that is not set: say so, send nothing)."""
    if not base.usable:
        return {"reachable": False, "error": base.reason}
    from workbench.generation.backends.openai import OpenAIBackend

    return OpenAIBackend.load(base, settings).status()


def _info(base, settings) -> dict:
    """Family, context window, chat template (own, none, or the server's) and BOS convention, from the files."""
    from workbench.generation.modelinfo import model_info

    try:
        return model_info(base, settings).to_dict()
    except (OSError, ValueError) as exc:  # an unreadable file: say so, list the rest
        return {"error": f"{base.source} cannot be read ({exc})."}


def _serving(settings) -> tuple[list[str], list[str], str | None]:
    """The served families, every checkpoint name across them, and the memory policy in words (or its error)."""
    from workbench.generation.budget import plan
    from workbench.generation.router import choices
    from workbench.registry import served_bases

    try:
        return [b.name for b in served_bases(settings)], choices(settings), plan(settings).describe()
    except WorkbenchError as exc:
        return [], [], str(exc)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    try:
        current = resolve_base(settings)
    except WorkbenchError:
        current = None  # still list everything; each entry says why it is unusable
    bases = list_bases(settings)
    adapters = list_adapters(settings, current)
    backend = choose_backend(settings, current) if current else None
    status = {b.name: _remote_status(b, settings) for b in bases if b.kind == "remote"}
    served, names, policy = _serving(settings) if current else ([], [], None)
    if args.json:
        print_json(
            {
                "base": current.name if current else None,
                "backend": backend,
                "served": served,
                "checkpoints": names,
                "policy": policy,
                "bases": [
                    asdict(b)
                    | {"selected": current is not None and b.name == current.name}
                    | ({"status": status[b.name]} if b.name in status else {})
                    | ({"info": _info(b, settings)} if b.usable else {})
                    for b in bases
                ],
                "adapters": [
                    {k: v for k, v in asdict(a).items() if k != "meta"} | {"path": str(a.path)} for a in adapters
                ],
            }
        )
        return 0
    if backend:
        print(f"Backend: {backend} (WORKBENCH_BACKEND={settings.backend})")
    print("Base models:")
    for b in bases:
        mark = "*" if current and b.name == current.name else "+" if b.name in served else " "
        state = "ok" if b.usable else "unusable"
        note = f"  ({b.reason})" if b.reason else ""
        if b.name in status:
            s = status[b.name]
            note += f"  {b.source}: " + (f"serves {', '.join(s['models'])}" if s.get("reachable") else s["error"])
        print(f" {mark} {b.name:<32} {b.kind:<6} {state}{note}")
    if policy:
        print(f"Checkpoints: {', '.join(names)}\nMemory and cores: {policy}")
    print(f"Adapters in {settings.adapters_dir}:" if adapters else f"No adapters in {settings.adapters_dir}.")
    for a in adapters:
        status = "ok" if a.usable else f"unusable: {a.reason}"
        print(f"   {a.name:<40} step {a.step if a.step is not None else '-':<6} {status}")
    return 0
