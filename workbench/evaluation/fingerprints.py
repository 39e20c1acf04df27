"""SHA-256 fingerprints of what an evaluation used: data files, base-model weights, adapter weights.

Stored with every result so two numbers can be told apart when their inputs differ. Torch-free. File
hashes are cached per process by (path, size, modification time), so evaluating many checkpoints
hashes the base model once.

    file_sha256("evals/data/tinyshakespeare/input_head.txt")
    model_sha256(base, adapter)   # base weights, and the adapter's weights when one is given
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from workbench.registry import ADAPTER_WEIGHTS, Adapter, BaseModel

_CACHE: dict[tuple[str, int, int], str] = {}
_WEIGHTS = ("*.safetensors", "*.bin", "*.gguf")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (cached while the file's size and mtime are unchanged)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _CACHE:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _CACHE[key] = digest.hexdigest()
    return _CACHE[key]


def folder_sha256(folder: str | Path) -> str | None:
    """SHA-256 over the weight files of a model folder (name and hash of each, sorted); None when it has none."""
    folder = Path(folder)
    files = sorted({p for pattern in _WEIGHTS for p in folder.glob(pattern) if p.is_file()})
    if not files:
        return None
    lines = "".join(f"{p.name} {file_sha256(p)}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def _hub_folder(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached, or no hub library: the hash is simply unknown
        return None


def base_sha256(base: BaseModel) -> str | None:
    """The base model's weights: the GGUF file itself, or the weight files of its folder (hub: its cached copy);
    None for a remote model, whose weights are not here."""
    if base.kind == "remote":
        return None
    if base.kind == "gguf":
        return file_sha256(base.source)
    folder = Path(base.source) if base.kind == "folder" else _hub_folder(base.source)
    return folder_sha256(folder) if folder else None


def model_sha256(base: BaseModel, adapter: Adapter | None = None) -> tuple[str | None, str | None, str | None]:
    """(combined, base, adapter) hashes: combined is the base hash alone, or SHA-256 of "base+adapter"."""
    base_hash = base_sha256(base)
    if adapter is None or base.kind == "remote":
        return base_hash, base_hash, None
    adapter_hash = file_sha256(adapter.path / ADAPTER_WEIGHTS)
    combined = hashlib.sha256(f"{base_hash}+{adapter_hash}".encode()).hexdigest()
    return combined, base_hash, adapter_hash
