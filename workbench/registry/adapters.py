"""Which LoRA adapters exist on disk and whether each one is usable, checked without loading it.

    adapters = list_adapters(settings, base)     # every `<run>` and `<run>/checkpoint-<step>`, usable or with a reason
    adapter = find_adapter(settings, "my-run/checkpoint-20", base)   # the usable one, else WorkbenchError
    signature = adapters_signature(settings)     # a cheap fingerprint: equal means an unchanged list

Adapters are PEFT folders under `models/adapters/` (`<run>/` and `<run>/checkpoint-<step>/`), each checked
without loading it: config readable, weights file complete, trained for the given base (`same_base`). A remote
model's adapters are the ones its registry entry names (served by its server), not folders on disk. Torch-free.
"""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.registry.bases import BaseModel
from workbench.safety.names import check_name, inside

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
RUN_META = "workbench.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"  # beside an adapter trained on a base model: the template it learned
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class Adapter:
    """A LoRA adapter folder and whether the loaded base can use it.

    Attributes:
        name: Path relative to the adapters folder, e.g. "my-run" or "my-run/checkpoint-20".
        path: The folder.
        run: The training run it belongs to (first part of the name).
        step: Training step for a checkpoint, or the final step recorded in workbench.json.
        base_model: The base model the adapter was trained on, as recorded in its config.
        usable: False when broken or trained for another base; `reason` says why.
        reason: One sentence when unusable.
        meta: The run's workbench.json (hyperparameters, losses), empty when absent.
    """

    name: str
    path: Path
    run: str
    step: int | None
    base_model: str
    usable: bool
    reason: str = ""
    meta: dict = field(default_factory=dict, compare=False, repr=False)


def remote_adapters(base: BaseModel) -> list[Adapter]:
    """The adapters a remote model's server serves, as its registry entry names them."""
    assert base.remote is not None
    return [
        Adapter(name, Path(base.source), name.split("/")[0], None, base.name, usable=True, meta={"server_model": m})
        for name, m in base.remote.adapters
    ]


def same_base(recorded: str, base: BaseModel) -> bool:
    """Whether an adapter's recorded `base_model_name_or_path` refers to `base`.

    Adapters trained here record the base's name; adapters trained elsewhere record a hub id or the
    folder they were trained from, whose last part is our cache folder name.
    """
    recorded = recorded.strip().rstrip("/")
    if recorded in {base.name, base.source}:
        return True
    if base.kind == "hub":
        return False
    return Path(recorded).name in {base.cache_name, Path(base.source).name}


def _safetensors_problem(path: Path) -> str | None:
    """Check a safetensors file's header and length without loading it; return the problem or None."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{path.name} is empty or truncated."
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                return f"{path.name} is truncated."
            header = json.loads(f.read(n))
    except (OSError, ValueError) as exc:
        return f"{path.name} cannot be read ({exc})."
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    if not ends:
        return f"{path.name} holds no tensors."
    if 8 + n + max(ends) > size:
        return f"{path.name} is truncated."
    return None


def inspect_adapter(path: Path, name: str, base: BaseModel | None = None) -> Adapter:
    """Describe one adapter folder; never raises for a broken one (it comes back unusable)."""
    run = name.split("/")[0]
    meta: dict = {}
    meta_file = path / RUN_META
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
    match = _CHECKPOINT.match(path.name)
    step = int(match.group(1)) if match else meta.get("step")

    def broken(reason: str, recorded: str = "") -> Adapter:
        return Adapter(name, path, run, step, recorded, usable=False, reason=reason, meta=meta)

    try:
        config = json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except OSError:
        return broken(f"{ADAPTER_CONFIG} is missing.")
    except ValueError as exc:
        return broken(f"{ADAPTER_CONFIG} is not valid JSON ({exc}).")
    if not isinstance(config, dict) or "peft_type" not in config:
        return broken(f"{ADAPTER_CONFIG} is not a PEFT adapter config.")
    recorded = str(config.get("base_model_name_or_path") or "")
    weights = path / ADAPTER_WEIGHTS
    if not weights.is_file():
        return broken(f"{ADAPTER_WEIGHTS} is missing.", recorded)
    problem = _safetensors_problem(weights)
    if problem:
        return broken(problem, recorded)
    if base is not None and not same_base(recorded, base):
        return broken(
            f"trained for base model {recorded or 'unknown'!r}, but the loaded base is {base.name!r}.", recorded
        )
    return Adapter(name, path, run, step, recorded, usable=True, meta=meta)


def _visible(path: Path) -> bool:
    # Training writes into dot-prefixed temporary folders and renames them when complete.
    return path.is_dir() and not path.name.startswith((".", "_"))


def list_adapters(settings: Settings, base: BaseModel | None = None) -> list[Adapter]:
    """Every adapter under the adapters folder: `<run>` (final) and `<run>/checkpoint-<step>`.

    Args:
        settings: Where to look.
        base: When given, adapters trained for another base are marked unusable; a remote base has the
            adapters its registry entry names instead.
    """
    if base is not None and base.kind == "remote":
        return remote_adapters(base)
    root = settings.adapters_dir
    if not root.is_dir():
        return []
    found: list[Adapter] = []
    inside_root = root.resolve()
    # A symlink out of the folder is never listed, as `find_adapter` would never load it.
    for run in sorted(p for p in root.iterdir() if _visible(p) and inside_root in p.resolve().parents):
        # A run folder is itself an adapter once its final adapter lands; before that it holds only
        # checkpoints and logs, and is not listed (so a run in progress never shows as broken).
        if (run / ADAPTER_CONFIG).exists() or (run / ADAPTER_WEIGHTS).exists():
            found.append(inspect_adapter(run, run.name, base))
        checkpoints = [
            c for c in run.iterdir() if _visible(c) and _CHECKPOINT.match(c.name) and inside_root in c.resolve().parents
        ]
        for ckpt in sorted(checkpoints, key=lambda c: int(_CHECKPOINT.match(c.name).group(1))):
            found.append(inspect_adapter(ckpt, f"{run.name}/{ckpt.name}", base))
    return found


def _stamp(path: Path | os.DirEntry) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def adapters_signature(settings: Settings) -> tuple:
    """A cheap fingerprint of what `list_adapters` reads: registry.yaml, the adapters folder, each run and
    checkpoint folder and the adapter files in them, by modification time and size (stat calls, nothing parsed).
    Equal signatures mean an unchanged list, so a page's timer can skip the scan (training publishes by rename,
    which changes the folder's time)."""
    parts: list = [_stamp(settings.registry_file), _stamp(settings.adapters_dir)]
    if not settings.adapters_dir.is_dir():
        return tuple(parts)
    for run in sorted((e for e in os.scandir(settings.adapters_dir) if _visible(Path(e.path))), key=lambda e: e.name):
        folders = [Path(run.path)] + [Path(c.path) for c in os.scandir(run.path) if _CHECKPOINT.match(c.name)]
        for folder in folders:
            files = (ADAPTER_CONFIG, ADAPTER_WEIGHTS, RUN_META)
            parts.append((folder.name, _stamp(folder), *(_stamp(folder / f) for f in files)))
    return tuple(parts)


def find_adapter(settings: Settings, name: str, base: BaseModel | None = None) -> Adapter:
    """The usable adapter called `name`.

    Raises:
        WorkbenchError: No such adapter, or it is unusable (the sentence says why).
    """
    if base is not None and base.kind == "remote":
        for adapter in remote_adapters(base):
            if adapter.name == name:
                return adapter
        raise WorkbenchError(f"{base.name} has no adapter called {name!r}; its registry entry names them.")
    # One spelling per adapter ("run//checkpoint-10" is "run/checkpoint-10"), so caches keyed by name hold it once.
    name = check_name(name, "adapter", parts=2)
    path = inside(settings.adapters_dir, name, "adapter", folder="the adapters folder")
    if not path.is_dir():
        raise WorkbenchError(f"There is no adapter called {name!r}; `python -m workbench models` lists them.")
    adapter = inspect_adapter(path, name, base)
    if not adapter.usable:
        raise WorkbenchError(f"Adapter {name!r} cannot be used: {adapter.reason}")
    return adapter
