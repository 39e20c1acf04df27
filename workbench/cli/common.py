"""Flags and helpers shared by several subcommands (settings, generation flags, JSON output)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from workbench.config import Settings
from workbench.generation.settings import GenerationSettings


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """--model / --device / --dtype / --backend / --slots, overriding the WORKBENCH_ variables of the same names."""
    parser.add_argument("--model", help="base model: registry name, folder, .gguf file or hub id (default: embedded)")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--dtype", help="auto, float32, bfloat16 or float16 (default: auto)")
    parser.add_argument(
        "--backend", help="auto, transformers or llamacpp (default: auto: llama.cpp for a GGUF model on the CPU)"
    )
    parser.add_argument("--slots", help="requests llama.cpp generates at once (default: 4)")


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with the model flags applied."""
    flags = ("model", "device", "dtype", "backend", "slots")
    return Settings.from_env(**{name: getattr(args, name, None) for name in flags})


def add_generation_flags(parser: argparse.ArgumentParser) -> None:
    """Every GenerationSettings field as a flag."""
    d = GenerationSettings()
    g = parser.add_argument_group("generation")
    g.add_argument("--temperature", type=float, default=d.temperature, help="0 means greedy (default: %(default)s)")
    g.add_argument("--top-p", type=float, default=d.top_p, help="nucleus mass in (0, 1] (default: %(default)s)")
    g.add_argument("--top-k", type=int, default=d.top_k, help="0 disables (default: %(default)s)")
    g.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens, help="(default: %(default)s)")
    g.add_argument("--repetition-penalty", type=float, default=d.repetition_penalty, help="(default: %(default)s)")
    g.add_argument("--seed", type=int, default=None, help="random seed (default: a new one per reply)")
    g.add_argument("--stop", action="append", default=[], help="stop string; repeat for several")


def generation_from(args: argparse.Namespace) -> GenerationSettings:
    """GenerationSettings from the generation flags (validated)."""
    return GenerationSettings(
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        max_new_tokens=args.max_new_tokens,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
        stop=tuple(args.stop),
    )


def print_json(data: Any) -> None:
    """Print one JSON object on stdout."""
    json.dump(data, sys.stdout, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
