"""What a base model is, read from its files without loading its weights: family, context window, chat
template, and whether its texts start with BOS.

    info = model_info(base, settings)
    info.architecture, info.context_window, info.chat_template, info.adds_bos

A GGUF file says it in its metadata (`general.architecture`, `<arch>.context_length`, `tokenizer.chat_template`,
`tokenizer.ggml.add_bos_token`...); a folder (or a hub model already downloaded) in `config.json` and
`tokenizer_config.json`. `chat_template` is "own" (the model ships one) or "none" (a base model, served in
completion mode: it continues the text). Torch-free; a GGUF is read once per file version.
"""

from __future__ import annotations

import functools
import json
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.config import Settings
from workbench.registry import BaseModel


@dataclass(frozen=True)
class GGUFTokenizer:
    """The tokenizer conventions a GGUF file records (None where it says nothing)."""

    add_bos: bool | None = None
    add_eos: bool | None = None
    bos_id: int | None = None
    eos_id: int | None = None


@dataclass(frozen=True)
class ModelInfo:
    """What `models --json` and the app say about a base model.

    Attributes:
        architecture: The model family ("llama", "gemma3", ...), or None when unknown (a remote model).
        context_window: Tokens the model was trained with, or None when unknown.
        chat_template: "own" when the model ships a chat template, "none" for a base model (completion mode),
            "server" for a remote model (its server applies its own).
        adds_bos: Whether its texts start with the BOS token (None when unknown).
    """

    architecture: str | None
    context_window: int | None
    chat_template: str
    adds_bos: bool | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# GGUF metadata value types (the GGUF spec): struct formats of the scalars; 8 is a string, 9 an array.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_WANTED = ("general.architecture", "tokenizer.chat_template", "tokenizer.ggml.")
_VOCABULARY = (".tokens", ".scores", ".token_type", ".merges")  # large, and not needed here
# What the KV cache's size follows (workbench.generation.budget): layers, KV heads and their width.
_SHAPE = (".context_length", ".block_count", ".embedding_length", ".attention.head_count", ".attention.head_count_kv")
_SHAPE += (".attention.key_length", ".attention.value_length")


def _wanted(key: str) -> bool:
    return (key.startswith(_WANTED) and not key.endswith(_VOCABULARY)) or key.endswith(_SHAPE)


class _Header:
    """Reads a GGUF file's metadata section in order, skipping what is not wanted.

    Why not `gguf.GGUFReader`: it maps every field, the 49,152-token vocabulary included, into numpy views
    (a second or more of a cold start for the embedded model, which a first visitor waits for); this reads the
    few values asked for and steps over the rest.
    """

    def __init__(self, f) -> None:
        self.f = f

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        return struct.unpack("<" + fmt, self.f.read(size))[0]

    def string(self, keep: bool = True) -> str | None:
        n = self.unpack("Q")
        if not keep:
            self.f.seek(n, 1)
            return None
        return self.f.read(n).decode("utf-8", errors="replace")

    def value(self, kind: int, keep: bool) -> Any:
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string(keep)
        if kind != _ARRAY:
            raise ValueError(f"unknown GGUF value type {kind}")
        item, count = self.unpack("I"), self.unpack("Q")
        if item in _SCALARS and not keep:
            self.f.seek(count * struct.calcsize(_SCALARS[item]), 1)
            return None
        values = [self.value(item, keep) for _ in range(count)]
        return values if keep else None


@functools.lru_cache(maxsize=16)
def _gguf_fields(path: str, mtime_ns: int) -> dict[str, Any]:
    with open(path, "rb") as f:
        header = _Header(f)
        if f.read(4) != b"GGUF" or header.unpack("I") < 2:
            raise ValueError(f"{Path(path).name} is not a GGUF file of version 2 or later")
        header.unpack("Q")  # tensors
        fields = {}
        for _ in range(header.unpack("Q")):
            key = header.string()
            keep = _wanted(key)
            value = header.value(header.unpack("I"), keep)
            if keep:
                fields[key] = value
    return fields


def gguf_fields(path: str | Path) -> dict[str, Any]:
    """A GGUF file's architecture, context length, chat template and tokenizer flags (cached per file version)."""
    path = Path(path)
    return _gguf_fields(str(path), path.stat().st_mtime_ns)


def gguf_tokenizer(path: str | Path) -> GGUFTokenizer:
    """The BOS/EOS conventions a GGUF file records for its tokenizer."""
    fields = gguf_fields(path)

    def get(key: str) -> Any:
        return fields.get(f"tokenizer.ggml.{key}")

    return GGUFTokenizer(
        add_bos=get("add_bos_token"),
        add_eos=get("add_eos_token"),
        bos_id=get("bos_token_id"),
        eos_id=get("eos_token_id"),
    )


def gguf_context_length(path: str | Path) -> int:
    """The context length a GGUF model was trained with (`<arch>.context_length`), 0 when it does not say."""
    fields = gguf_fields(path)
    arch = fields.get("general.architecture")
    return int(fields.get(f"{arch}.context_length") or 0)


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _folder(base: BaseModel, settings: Settings) -> Path | None:
    if base.kind == "folder":
        return Path(base.source)
    if base.kind == "hub":
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(base.source, local_files_only=True))
        except Exception:  # not downloaded yet: nothing to read
            return None
    return None


def model_info(base: BaseModel, settings: Settings) -> ModelInfo:
    """What `base` is (see ModelInfo), from its files; unknown fields are None."""
    if base.kind == "remote":
        return ModelInfo(None, None, "server", None)
    if base.kind == "gguf":
        fields = gguf_fields(base.source)
        tokenizer = gguf_tokenizer(base.source)
        return ModelInfo(
            architecture=fields.get("general.architecture"),
            context_window=gguf_context_length(base.source) or None,
            chat_template="own" if fields.get("tokenizer.chat_template") else "none",
            adds_bos=bool(tokenizer.add_bos) if tokenizer.add_bos is not None else None,
        )
    folder = _folder(base, settings)
    if folder is None:
        return ModelInfo(None, None, "none", None)
    config, tokenizer = _json(folder / "config.json"), _json(folder / "tokenizer_config.json")
    template = tokenizer.get("chat_template") or (folder / "chat_template.jinja").is_file()
    adds_bos = tokenizer.get("add_bos_token")
    return ModelInfo(
        architecture=config.get("model_type"),
        context_window=config.get("max_position_embeddings"),
        chat_template="own" if template else "none",
        adds_bos=bool(adds_bos) if adds_bos is not None else None,
    )
