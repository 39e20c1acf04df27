"""`python -m workbench presets`: list the named generation settings, save your own, or save one with a checkpoint.

    python -m workbench presets [--json]                                  # shipped and yours, with their values
    python -m workbench presets --save my-demo --temperature 0.5 --top-k 20     # add yours (models/presets.json)
    python -m workbench presets --checkpoint my-run --preset precise      # my-run/generation_config.json

A checkpoint's saved settings are the default whenever it is chosen (chat --adapter, the Chat tab, the Lab).
"""

from __future__ import annotations

import argparse

from workbench.cli.common import add_generation_flags, generation_from, print_json, settings_from
from workbench.generation import presets


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("presets", help="list named generation settings; save yours or save one with a checkpoint")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--save", metavar="NAME", help="save the settings given (--preset and flags) as your preset NAME")
    p.add_argument("--checkpoint", help="save the settings given as this adapter's generation_config.json")
    add_generation_flags(p)
    return p


def _row(name: str, gen, origin: str) -> dict:
    data = gen.to_dict()
    data.pop("seed")
    return {"name": name, "origin": origin, **data}


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)  # models/ from WORKBENCH_MODELS_DIR, as everywhere
    if args.save or args.checkpoint:
        gen = generation_from(args, settings)
        if args.save:
            print(f"saved preset {args.save.strip()!r} in {presets.save_preset(settings, args.save, gen)}")
        if args.checkpoint:
            print(f"saved {presets.save_to_checkpoint(settings, args.checkpoint, gen)}")
        return 0
    rows = [_row(n, g, "shipped" if n in presets.SHIPPED else "yours") for n, g in presets.presets(settings).items()]
    if args.json:
        print_json({"presets": rows})
        return 0
    for r in rows:
        stop = f" stop={r['stop']}" if r["stop"] else ""
        print(
            f"{r['name']:<16} {r['origin']:<8} temperature={r['temperature']:g} top_p={r['top_p']:g} "
            f"top_k={r['top_k']} repetition_penalty={r['repetition_penalty']:g} "
            f"max_new_tokens={r['max_new_tokens']}{stop}"
        )
    return 0
