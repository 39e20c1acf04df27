"""`python -m workbench sweep`: sample one prompt over one or two generation settings (and several checkpoints)
and measure every cell.

    python -m workbench sweep --prompt "Write one sentence about the sea." \\
        --axis temperature=0,0.7,1.2 --axis top_p=0.9,1 --samples 3 --json
    python -m workbench sweep --suite self_instruct_user --example 3 --axis top_k=5,50 --checkpoint base \\
        --checkpoint my-run            # the suite's references add BLEU and chrF per cell
    python -m workbench sweep --prompt "Say hello." --axis adapter_strength=0,0.5,1,1.5 --checkpoint my-run

Settings not swept come from --preset and the generation flags (default: the app's defaults with top-k off).
Sample i of every cell uses seed --seed + i. Measures: workbench/studio/sweep.py.
"""

from __future__ import annotations

import argparse
import math

from workbench.cli.common import add_generation_flags, add_model_flags, generation_from, print_json, settings_from
from workbench.errors import WorkbenchError
from workbench.generation.settings import conversation
from workbench.studio import sweep

_TYPED = ("preset", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "stop", "adapter_strength")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("sweep", help="sample a prompt over one or two generation settings and measure each cell")
    p.add_argument("--prompt", help="the user message")
    p.add_argument("--system", default="", help="system prompt (with --prompt)")
    p.add_argument("--suite", help="take the prompt and its references from this evaluation suite instead")
    p.add_argument("--example", default="0", help="the suite example: position or id (default: %(default)s)")
    p.add_argument("--axis", action="append", default=[], help="NAME=V1,V2,...; one or two of " + ", ".join(sweep.AXES))
    p.add_argument("--checkpoint", action="append", default=[], help="checkpoint to sweep; repeat (default: base)")
    p.add_argument("--samples", type=int, default=3, help="samples per cell (default: %(default)s)")
    p.add_argument("--no-logprob", action="store_true", help="skip the mean token log-probability (no reference model)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_model_flags(p)
    add_generation_flags(p)
    return p


def _messages(args: argparse.Namespace):
    if bool(args.prompt) == bool(args.suite):
        raise WorkbenchError("Give the prompt with --prompt, or take one from a suite with --suite (not both).")
    if args.suite:
        return sweep.suite_prompt(args.suite, args.example)
    if not args.prompt.strip():
        raise WorkbenchError("The prompt is empty: pass some text with --prompt.")
    return conversation(None, args.prompt, args.system), []


def _clean(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def run(args: argparse.Namespace) -> int:
    from workbench.generation.router import Router
    from workbench.generation.tokenprobs import mean_logprob

    axes = sweep.parse_axes(args.axis)  # every check before the slow model load
    messages, references = _messages(args)
    settings = settings_from(args)
    typed = any(getattr(args, name) for name in _TYPED)
    base = generation_from(args, settings) if typed else sweep.BASE
    router = Router(settings)

    def logprob(text: str, checkpoint: str) -> float:
        try:
            return mean_logprob(router, messages, text, checkpoint)
        except WorkbenchError:  # a remote model sends no distribution for a given text
            return float("nan")

    outputs = sweep.run(
        router,
        messages,
        args.checkpoint or ["base"],
        axes,
        samples=args.samples,
        max_new_tokens=args.max_new_tokens or 48,
        seed=args.seed or 0,
        base=base,
    )
    table = sweep.measure(outputs, references, None if args.no_logprob else logprob)
    if args.json:
        cells = [{k: _clean(v) for k, v in row.items()} for row in table.to_dict("records")]
        print_json({"axes": axes, "references": len(references), "cells": cells, "outputs": outputs.to_dict("records")})
        return 0
    print(table.round(3).to_string(index=False))
    return 0
