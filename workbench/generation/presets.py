"""Presets: named generation settings. Three ship (precise, balanced, creative; balanced is the default, the one
`GenerationSettings()` holds and the Chat tab and dashboard start from); a user's own live in
`models/presets.json`; a tuned setting can be saved into an adapter's folder as its `generation_config.json`
(transformers' GenerationConfig format), so it travels with the adapter and is the default when it is chosen.

    presets(settings)                                    # {"precise": GenerationSettings(...), ...}, shipped first
    preset(settings, "creative")                         # one, or WorkbenchError naming the choices
    save_preset(settings, "my-demo", chosen)             # into models/presets.json
    save_to_checkpoint(settings, "my-run", chosen)       # models/adapters/my-run/generation_config.json
    checkpoint_default(settings, "my-run")               # what that file says, or None

A preset holds the sampling settings, the adapter strength, the reply length and stop strings, never a seed (a
seed belongs to one request). Torch-free: the JSON is written here with GenerationConfig's field names, and tests
read it back with `transformers.GenerationConfig.from_pretrained`. The adapter strength has no GenerationConfig
field (transformers applies an adapter as trained): it goes in as `adapter_strength`, only when it is not 1, and
GenerationConfig keeps such an extra key as an attribute of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings
from workbench.registry import BASE_NAME, find_adapter

PRESETS_FILE = "presets.json"
GENERATION_CONFIG = "generation_config.json"
SHIPPED: dict[str, GenerationSettings] = {
    # Near-greedy and a little repeat-averse: factual answers, the same reply most times.
    "precise": GenerationSettings(temperature=0.2, top_p=0.9, top_k=40, repetition_penalty=1.1),
    # The defaults (DEFAULT_PRESET): low temperature, a narrower nucleus and a light repeat penalty, which answer
    # the embedded model's simple questions best (workbench/bench/quality.py).
    "balanced": GenerationSettings(),
    # Flatter distribution with a wide nucleus and no top-k, and min-p 0.05 cutting the long tail that a high
    # temperature lifts (the min-p paper's setting for creative sampling): varied wording, less drifting.
    "creative": GenerationSettings(temperature=1.1, top_p=0.98, top_k=0, min_p=0.05, repetition_penalty=1.05),
}
DEFAULT_PRESET = "balanced"  # the one GenerationSettings() holds: what the Chat tab and the dashboard start from
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,39}$")


def _file(settings: Settings) -> Path:
    return Path(settings.models_dir) / PRESETS_FILE


def _portable(gen: GenerationSettings) -> GenerationSettings:
    return gen.replace(seed=None)


def user_presets(settings: Settings) -> dict[str, GenerationSettings]:
    """The user's own presets from models/presets.json (empty when the file is absent)."""
    path = _file(settings)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkbenchError(f"{path} is not a readable JSON file of presets ({exc.__class__.__name__}).") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise WorkbenchError(f"{path} must map preset names to their settings.")
    out = {}
    for name, values in data.items():
        try:
            out[name] = _portable(GenerationSettings.from_dict(values))
        except WorkbenchError as exc:
            raise WorkbenchError(f"Preset {name!r} in {path}: {exc}") from None
    return out


def presets(settings: Settings) -> dict[str, GenerationSettings]:
    """Every preset by name: the shipped ones, then the user's own."""
    return {**SHIPPED, **{k: v for k, v in user_presets(settings).items() if k not in SHIPPED}}


def preset(settings: Settings, name: str) -> GenerationSettings:
    """The preset called `name`, or one sentence naming the ones there are."""
    known = presets(settings)
    if name not in known:
        raise WorkbenchError(f"There is no preset called {name!r}; choose one of {', '.join(known)}.")
    return known[name]


def save_preset(settings: Settings, name: str, gen: GenerationSettings) -> Path:
    """Add or replace the user's preset `name` in models/presets.json; returns the file."""
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise WorkbenchError("A preset name is 1 to 40 letters, digits, spaces, dots, dashes or underscores.")
    name = name.strip()
    if name in SHIPPED:
        raise WorkbenchError(f"{name!r} is a shipped preset; save yours under another name.")
    mine = {k: v.to_dict() for k, v in user_presets(settings).items()}
    mine[name] = _portable(gen).to_dict()
    path = _file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(mine, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def to_generation_config(gen: GenerationSettings) -> dict[str, Any]:
    """The settings as transformers' GenerationConfig fields (greedy is do_sample false, with no sampling
    fields, which GenerationConfig would flag as unused)."""
    data: dict[str, Any] = {"do_sample": not gen.greedy, "max_new_tokens": gen.max_new_tokens}
    if not gen.greedy:
        data |= {"temperature": gen.temperature, "top_p": gen.top_p, "top_k": gen.top_k}
        if gen.min_p:
            data["min_p"] = gen.min_p
    data["repetition_penalty"] = gen.repetition_penalty
    if gen.stop:
        data["stop_strings"] = list(gen.stop)
    if gen.adapter_strength != 1:
        data["adapter_strength"] = gen.adapter_strength
    return data


def from_generation_config(data: Mapping[str, Any]) -> GenerationSettings:
    """GenerationSettings from a generation_config.json mapping; fields it lacks keep transformers' defaults
    (temperature 1, top-p 1, top-k 50), as generate() would use them."""
    temperature = data.get("temperature", 1.0) if data.get("do_sample", False) else 0.0
    stop = data.get("stop_strings") or ()
    top_p, top_k = data.get("top_p", 1.0), data.get("top_k", 50)
    return GenerationSettings(
        temperature=temperature,
        top_p=1.0 if top_p is None else top_p,
        top_k=0 if top_k is None else top_k,  # null switches top-k off in transformers
        min_p=data.get("min_p") or 0.0,
        max_new_tokens=data.get("max_new_tokens") or GenerationSettings().max_new_tokens,
        repetition_penalty=data.get("repetition_penalty") or 1.0,
        stop=(stop,) if isinstance(stop, str) else tuple(stop),
        adapter_strength=data.get("adapter_strength", 1.0),
    )


def checkpoint_folder(settings: Settings, checkpoint: str) -> Path:
    """The folder of a local adapter, where its generation_config.json goes."""
    if not isinstance(checkpoint, str) or checkpoint.strip() in ("", BASE_NAME):
        raise WorkbenchError(
            "The base model's folder is not Workbench's to change: choose an adapter, or save a preset instead."
        )
    if checkpoint.startswith("remote:"):
        raise WorkbenchError("A remote model keeps its settings on its server: save a preset instead.")
    return find_adapter(settings, checkpoint).path


def save_to_checkpoint(settings: Settings, checkpoint: str, gen: GenerationSettings) -> Path:
    """Write `gen` as the adapter's generation_config.json; returns the file."""
    path = checkpoint_folder(settings, checkpoint) / GENERATION_CONFIG
    path.write_text(json.dumps(to_generation_config(gen), indent=2) + "\n", encoding="utf-8")
    return path


def checkpoint_default(settings: Settings, checkpoint: str | None) -> GenerationSettings | None:
    """The settings saved with a local adapter, or None (the base model, a remote one, or no file)."""
    if not checkpoint or checkpoint == BASE_NAME or checkpoint.startswith("remote:"):
        return None
    path = checkpoint_folder(settings, checkpoint) / GENERATION_CONFIG
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise WorkbenchError(f"{path} is not readable JSON; save the checkpoint's settings again.") from None
    if not isinstance(data, dict):
        raise WorkbenchError(f"{path} must hold one JSON object of generation settings.")
    return from_generation_config(data)
