"""Flags and helpers shared by several subcommands (settings, generation flags, JSON output)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from workbench.config import Settings, reference
from workbench.generation.settings import MAX_STRENGTH, GenerationSettings


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """--model / --device / --dtype / --backend / --slots, overriding the WORKBENCH_ variables of the same names."""
    parser.add_argument("--model", help="base model: registry name, folder, .gguf file or hub id (default: embedded)")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--dtype", help="auto, float32, bfloat16 or float16 (default: auto)")
    parser.add_argument(
        "--backend", help="auto, transformers or llamacpp (default: auto: llama.cpp for a GGUF model on the CPU)"
    )
    slots = next(row for row in reference() if row["variable"] == "WORKBENCH_SLOTS")  # its one declaration
    parser.add_argument("--slots", help=f"{slots['help']} (default: {slots['default']})")


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with the model flags applied."""
    flags = ("model", "device", "dtype", "backend", "slots")
    return Settings.from_env(**{name: getattr(args, name, None) for name in flags})


def add_generation_flags(parser: argparse.ArgumentParser) -> None:
    """--preset and every GenerationSettings field as a flag. A flag left out is None, so that
    `generation_from` can tell it from a value typed on purpose."""
    d = GenerationSettings()
    g = parser.add_argument_group("generation")
    g.add_argument("--preset", help="named settings from `presets`; the flags below override its values")
    g.add_argument("--temperature", type=float, help=f"0 means greedy (default: {d.temperature})")
    g.add_argument("--top-p", type=float, help=f"nucleus mass in (0, 1] (default: {d.top_p})")
    g.add_argument("--top-k", type=int, help=f"0 disables (default: {d.top_k})")
    g.add_argument("--min-p", type=float, help=f"share of the top token's probability, in [0, 1) (default: {d.min_p})")
    g.add_argument("--max-new-tokens", type=int, help=f"(default: {d.max_new_tokens})")
    g.add_argument("--repetition-penalty", type=float, help=f"(default: {d.repetition_penalty})")
    g.add_argument("--seed", type=int, default=None, help="random seed (default: a new one per reply)")
    g.add_argument("--stop", action="append", default=None, help="stop string; repeat for several")
    g.add_argument(
        "--adapter-strength",
        type=float,
        help=f"the adapter's LoRA scale times this, 0 to {MAX_STRENGTH:g}; 0 = the base model (default: 1, as trained)",
    )


_FLAGS = ("temperature", "top_p", "top_k", "min_p", "max_new_tokens", "repetition_penalty", "seed", "stop")
_FLAGS += ("adapter_strength",)


def generation_from(
    args: argparse.Namespace, settings: Settings | None = None, checkpoint: str | None = None
) -> GenerationSettings:
    """GenerationSettings from the generation flags (validated). Each layer overrides the one before: the
    defaults, the settings saved with `checkpoint` (its generation_config.json), --preset, the flags typed."""
    from workbench.generation import presets

    gen = GenerationSettings()
    preset = getattr(args, "preset", None)
    if settings is None and (preset or checkpoint):
        settings = settings_from(args)
    if checkpoint:
        gen = presets.checkpoint_default(settings, checkpoint) or gen
    if preset:
        gen = presets.preset(settings, preset)
    typed = {name: getattr(args, name, None) for name in _FLAGS}
    return gen.replace(**{name: value for name, value in typed.items() if value is not None})


def print_json(data: Any) -> None:
    """Print one JSON object on stdout."""
    json.dump(data, sys.stdout, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
