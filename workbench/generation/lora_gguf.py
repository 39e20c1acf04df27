"""Convert a PEFT LoRA adapter (as Workbench trains them) to llama.cpp's GGUF LoRA format.

llama.cpp serves a LoRA adapter from its own file format: the base model's tensor names with `.lora_a`
and `.lora_b` appended, `general.type = adapter` and one `adapter.lora.alpha`. This module writes that
file from an adapter folder (`adapter_config.json` + `adapter_model.safetensors`) and the base GGUF the
adapter is served on, reading only the base's metadata and tensor shapes. It imports numpy and gguf
only when it converts, never torch.

    from workbench.generation.lora_gguf import cached_gguf, convert_adapter
    gguf_file = cached_gguf(adapter.path, Path(base.source))   # <adapter>/adapter_model.gguf, made once
    convert_adapter(adapter.path, base_gguf, out_file)           # always converts

The cached file records a SHA-256 of the adapter's files (`workbench.adapter_sha256`), so a retrained or
resumed adapter is converted again and an unchanged one is not.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.registry import ADAPTER_CONFIG, ADAPTER_WEIGHTS

if TYPE_CHECKING:
    import numpy as np

GGUF_FILE = "adapter_model.gguf"
SHA_KEY = "workbench.adapter_sha256"

# llama.cpp's HF-to-GGUF converter reorders the rows of q_proj and k_proj for these architectures
# (LlamaModel.permute: the two rotary halves of each head interleaved, for its rope kernel), so the
# base GGUF's attn_q/attn_k are stored permuted and a LoRA B for them must be permuted the same way.
PERMUTED_QK_ARCHS = frozenset({"llama"})

_PEFT_PREFIX = "base_model.model."
_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<which>[AB])\.weight$")
_SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2"}

_memo_lock = threading.Lock()
_path_locks: dict[Path, threading.Lock] = {}
_sha_memo: dict[tuple, str] = {}  # adapter files' (path, size, mtime_ns) -> SHA-256
_stored_memo: dict[tuple, str | None] = {}  # converted file's (path, size, mtime_ns) -> its recorded SHA-256
_base_memo: dict[tuple, BaseInfo] = {}  # base GGUF's (path, size, mtime_ns) -> its metadata


@dataclass(frozen=True)
class BaseInfo:
    """What a conversion needs from the base GGUF.

    Attributes:
        arch: `general.architecture`, e.g. "llama".
        n_blocks: Number of transformer blocks.
        n_head: Attention heads (queries).
        n_head_kv: Key/value heads.
        shapes: Each base tensor's (row size, number of rows), i.e. (in features, out features).
    """

    arch: str
    n_blocks: int
    n_head: int
    n_head_kv: int
    shapes: dict[str, tuple[int, ...]]


def _stat_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _read_adapter_files(adapter_dir: Path) -> tuple[bytes, bytes]:
    """The config's and the weights' bytes, or one sentence on what is missing."""
    contents = []
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        try:
            contents.append((adapter_dir / name).read_bytes())
        except FileNotFoundError:
            raise WorkbenchError(f"{adapter_dir} has no {name}, so it cannot be converted to GGUF.") from None
        except OSError as exc:
            raise WorkbenchError(f"{adapter_dir / name} cannot be read ({exc.strerror}).") from None
    return contents[0], contents[1]


def _sha256(config: bytes, weights: bytes) -> str:
    digest = hashlib.sha256()
    for part in (config, weights):
        # Length-prefixed, so moving bytes from one file to the other changes the hash.
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


def _files_key(adapter_dir: Path) -> tuple | None:
    try:
        return tuple(_stat_key(adapter_dir / name) for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS))
    except OSError:
        return None


def _hash_and_remember(adapter_dir: Path, before: tuple | None, config: bytes, weights: bytes) -> str:
    sha = _sha256(config, weights)
    # Remember a hash only when the files did not change while they were read.
    if before is not None and _files_key(adapter_dir) == before:
        with _memo_lock:
            _sha_memo[before] = sha
    return sha


def adapter_sha256(adapter_dir: Path) -> str:
    """SHA-256 over an adapter's config and weights files, memoised by their size and modification time.

    Raises:
        WorkbenchError: A file is missing or unreadable.
    """
    adapter_dir = Path(adapter_dir)
    key = _files_key(adapter_dir)
    with _memo_lock:
        if key in _sha_memo:
            return _sha_memo[key]
    return _hash_and_remember(adapter_dir, key, *_read_adapter_files(adapter_dir))


def _field(reader: Any, key: str, path: Path) -> Any:
    field = reader.fields.get(key)
    if field is None:
        raise WorkbenchError(f"{path.name} has no {key!r} entry, so an adapter cannot be matched to it.")
    return field.contents()


def read_base(base_gguf: Path) -> BaseInfo:
    """The architecture, head counts and tensor shapes of a base GGUF (memoised per file version).

    Raises:
        WorkbenchError: The file is missing or is not a GGUF model.
    """
    base_gguf = Path(base_gguf)
    if not base_gguf.is_file():
        raise WorkbenchError(f"The base model file {base_gguf} does not exist.")
    key = _stat_key(base_gguf)
    with _memo_lock:
        if key in _base_memo:
            return _base_memo[key]
    import gguf

    try:
        reader = gguf.GGUFReader(base_gguf)
    except (ValueError, OSError, IndexError, KeyError) as exc:
        raise WorkbenchError(f"{base_gguf.name} is not a readable GGUF file ({exc}).") from None
    arch = str(_field(reader, gguf.Keys.General.ARCHITECTURE, base_gguf))
    n_head = int(_field(reader, gguf.Keys.Attention.HEAD_COUNT.format(arch=arch), base_gguf))
    kv_key = gguf.Keys.Attention.HEAD_COUNT_KV.format(arch=arch)
    info = BaseInfo(
        arch=arch,
        n_blocks=int(_field(reader, gguf.Keys.LLM.BLOCK_COUNT.format(arch=arch), base_gguf)),
        n_head=n_head,
        n_head_kv=int(reader.fields[kv_key].contents()) if kv_key in reader.fields else n_head,
        shapes={t.name: tuple(int(d) for d in t.shape) for t in reader.tensors},
    )
    with _memo_lock:
        _base_memo[key] = info
    return info


def _load_safetensors(data: bytes, name: str) -> dict[str, np.ndarray]:
    """Parse a safetensors file's bytes into float32 arrays (bf16 widened by hand: numpy has no bf16)."""
    import numpy as np

    truncated = WorkbenchError(f"{name} is truncated or not a safetensors file; save or train the adapter again.")
    if len(data) < 8:
        raise truncated
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise truncated
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError:
        raise truncated from None
    header.pop("__metadata__", None)
    arrays = {}
    try:
        for key, spec in header.items():
            dtype = _SAFETENSORS_DTYPES.get(spec["dtype"])
            if dtype is None:
                raise WorkbenchError(f"{name} stores {key} as {spec['dtype']}; only float tensors can be converted.")
            start = 8 + n + spec["data_offsets"][0]
            raw = np.frombuffer(data, dtype=dtype, count=math.prod(spec["shape"]), offset=start)
            if spec["dtype"] == "BF16":
                raw = (raw.astype(np.uint32) << 16).view(np.float32)
            arrays[key] = raw.reshape(spec["shape"]).astype(np.float32)
    except (KeyError, TypeError, ValueError, IndexError):  # a short buffer or a malformed header entry
        raise truncated from None
    return arrays


def _check_config(config: dict, adapter_dir: Path) -> None:
    """Refuse what llama.cpp's LoRA format cannot express, one sentence each."""
    where = f"The adapter in {adapter_dir}"
    if str(config.get("peft_type", "")).upper() != "LORA":
        raise WorkbenchError(f"{where} is a {config.get('peft_type')!r} adapter; only LoRA converts to GGUF.")
    if config.get("use_dora"):
        raise WorkbenchError(f"{where} uses DoRA, which llama.cpp's LoRA format cannot express.")
    if config.get("lora_bias") or config.get("bias", "none") != "none":
        raise WorkbenchError(f"{where} trains biases, which llama.cpp's LoRA format cannot express.")
    if config.get("modules_to_save"):
        raise WorkbenchError(
            f"{where} also saves whole modules ({', '.join(config['modules_to_save'])}), "
            "which llama.cpp's LoRA format cannot express."
        )
    if config.get("trainable_token_indices"):
        raise WorkbenchError(f"{where} trains token embeddings, which llama.cpp's LoRA format cannot express.")
    if config.get("fan_in_fan_out"):
        raise WorkbenchError(f"{where} uses fan_in_fan_out layers, which this converter does not handle.")


def _peft_scale(config: dict, module: str, rank: int) -> float:
    """The factor PEFT multiplies `module`'s B A by: its alpha over its rank (over sqrt(rank) with rsLoRA)."""
    alpha = config.get("lora_alpha", 8)
    # The rule PEFT uses for alpha_pattern: the first key that matches a suffix of the module's name wins.
    for pattern, value in (config.get("alpha_pattern") or {}).items():
        if re.match(rf"(.*\.)?({pattern})$", module):
            alpha = value
            break
    return alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)


def _permute_rows(b: np.ndarray, n_head: int) -> np.ndarray:
    """LlamaModel.permute on the rows: each head's two rotary halves interleaved."""
    return b.reshape(n_head, 2, b.shape[0] // n_head // 2, *b.shape[1:]).swapaxes(1, 2).reshape(b.shape)


def _pairs(weights: dict[str, np.ndarray], name: str) -> dict[str, dict[str, np.ndarray]]:
    """PEFT module name -> {"A": ..., "B": ...}, refusing any tensor that is not a LoRA matrix."""
    for key in weights:
        # Checked before anything else: PEFT may save whole embedding weights beside their LoRA matrices.
        parts = key.removeprefix(_PEFT_PREFIX).split(".")
        if "lora_embedding_A" in parts or "lora_embedding_B" in parts or {"embed_tokens", "lm_head"} & set(parts):
            raise WorkbenchError(
                f"{name} adapts the token embeddings or the output head ({key}); only LoRA on the "
                "transformer layers converts to GGUF (a tied output head has no tensor of its own)."
            )
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, array in weights.items():
        match = _LORA_KEY.match(key.removeprefix(_PEFT_PREFIX))
        if "lora_magnitude_vector" in key:
            raise WorkbenchError(f"{name} holds DoRA magnitudes ({key}), which llama.cpp's LoRA format cannot express.")
        if not key.startswith(_PEFT_PREFIX) or match is None:
            raise WorkbenchError(f"{name} holds {key}, which is not a LoRA matrix, so it cannot be converted.")
        pairs.setdefault(match["module"], {})[match["which"]] = array
    for module, pair in pairs.items():
        if set(pair) != {"A", "B"}:
            raise WorkbenchError(f"{name} has only half of the LoRA pair for {module}; the file is incomplete.")
    if not pairs:
        raise WorkbenchError(f"{name} holds no LoRA matrices.")
    return pairs


def _convert_tensors(
    config: dict, weights: dict[str, np.ndarray], base: BaseInfo, name: str
) -> tuple[float, list[tuple[str, np.ndarray]]]:
    """(alpha to record, [(gguf name, float32 array)]) for llama.cpp, checked against the base's shapes."""
    import gguf
    import numpy as np

    arches = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}
    if base.arch not in arches:
        raise WorkbenchError(f"The base model's architecture {base.arch!r} is unknown to the gguf package.")
    name_map = gguf.get_tensor_name_map(arches[base.arch], base.n_blocks)
    # llama.cpp scales every tensor by alpha / rank with one alpha (or by 1 when alpha is 0); any per-module
    # difference from PEFT's scaling (rsLoRA, rank_pattern, alpha_pattern) is folded into B below.
    alpha = float(config.get("lora_alpha") or 0.0)
    tensors = []
    for module, pair in sorted(_pairs(weights, name).items()):
        a, b = pair["A"], pair["B"]
        target = name_map.get_name(f"{module}.weight", try_suffixes=(".weight",))
        if target is None or target not in base.shapes:
            raise WorkbenchError(
                f"{name} adapts {module}, which has no tensor in the {base.arch} base model "
                "(was it trained for another architecture?)."
            )
        row_size, n_rows = base.shapes[target][0], base.shapes[target][-1]
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1] or (a.shape[1], b.shape[0]) != (row_size, n_rows):
            raise WorkbenchError(
                f"{name} does not fit the base model: {module} is {b.shape[0]}x{a.shape[-1]} with rank "
                f"{a.shape[0]}/{b.shape[-1]}, but {target} is {n_rows}x{row_size} (was it trained for another base?)."
            )
        llama_scale = alpha / a.shape[0] if alpha else 1.0
        if not math.isclose(peft_scale := _peft_scale(config, module, a.shape[0]), llama_scale, rel_tol=1e-9):
            b = b * np.float32(peft_scale / llama_scale)
        if base.arch in PERMUTED_QK_ARCHS and module.endswith(("q_proj", "k_proj")):
            n_head = base.n_head if module.endswith("q_proj") else base.n_head_kv
            b = _permute_rows(b, n_head)
        tensors.append((f"{target}.lora_a", np.ascontiguousarray(a, dtype=np.float32)))
        tensors.append((f"{target}.lora_b", np.ascontiguousarray(b, dtype=np.float32)))
    return alpha, tensors


def _write_atomically(
    out_file: Path, arch: str, title: str, alpha: float, sha: str, tensors: list[tuple[str, np.ndarray]]
) -> None:
    """Write the GGUF to a temporary file beside `out_file` and rename it, so no half file ever has its name."""
    import gguf

    out_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_file.name}.", suffix=".tmp", dir=out_file.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = gguf.GGUFWriter(tmp, arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_name(title)
        writer.add_string(SHA_KEY, sha)
        for tensor_name, array in tensors:
            writer.add_tensor(tensor_name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out_file)
    finally:
        tmp.unlink(missing_ok=True)


def convert_adapter(adapter_dir: Path, base_gguf: Path, out_file: Path) -> Path:
    """Convert the PEFT LoRA adapter in `adapter_dir` to a llama.cpp GGUF LoRA file for `base_gguf`.

    Args:
        adapter_dir: Folder with `adapter_config.json` and `adapter_model.safetensors`.
        base_gguf: The base model's GGUF, read for its architecture, head counts and tensor shapes only.
        out_file: Where to write; written to a temporary file beside it and renamed when complete.

    Returns:
        `out_file`.

    Raises:
        WorkbenchError: The adapter is incomplete, uses something llama.cpp cannot express (DoRA, biases,
            modules_to_save, embedding or output-head LoRA), or does not fit the base model.
    """
    adapter_dir, out_file = Path(adapter_dir), Path(out_file)
    base = read_base(Path(base_gguf))
    before = _files_key(adapter_dir)
    config_bytes, weights_bytes = _read_adapter_files(adapter_dir)
    # The hash recorded is of the very bytes converted, even if the files change meanwhile.
    sha = _hash_and_remember(adapter_dir, before, config_bytes, weights_bytes)
    try:
        config = json.loads(config_bytes)
    except ValueError as exc:
        raise WorkbenchError(f"{adapter_dir / ADAPTER_CONFIG} is not valid JSON ({exc}).") from None
    if not isinstance(config, dict):
        raise WorkbenchError(f"{adapter_dir / ADAPTER_CONFIG} is not a PEFT adapter config.")
    _check_config(config, adapter_dir)
    weights = _load_safetensors(weights_bytes, f"{adapter_dir.name}/{ADAPTER_WEIGHTS}")
    alpha, tensors = _convert_tensors(config, weights, base, f"The adapter in {adapter_dir}")
    # A checkpoint folder's own name says little; name it after its run too.
    title = adapter_dir.name
    if title.startswith("checkpoint-"):
        title = f"{adapter_dir.parent.name}/{title}"
    _write_atomically(out_file, base.arch, f"{title} (LoRA)", alpha, sha, tensors)
    with _memo_lock:
        _stored_memo[_stat_key(out_file)] = sha
    return out_file


def _stored_sha(gguf_file: Path) -> str | None:
    """The adapter hash recorded in a converted file; None when it is missing or unreadable."""
    try:
        key = _stat_key(gguf_file)
    except OSError:
        return None
    with _memo_lock:
        if key in _stored_memo:
            return _stored_memo[key]
    import gguf

    try:
        field = gguf.GGUFReader(gguf_file).fields.get(SHA_KEY)
        sha = str(field.contents()) if field is not None else None
    except (ValueError, OSError, IndexError, KeyError):
        sha = None  # torn or foreign: convert again
    with _memo_lock:
        _stored_memo[key] = sha
    return sha


def _lock_for(path: Path) -> threading.Lock:
    with _memo_lock:
        return _path_locks.setdefault(path.resolve(), threading.Lock())


def cached_gguf(adapter_dir: Path, base_gguf: Path) -> Path:
    """The adapter as a GGUF LoRA beside it (`<adapter_dir>/adapter_model.gguf`), converted when needed.

    Converts when the file is missing or was made from other adapter files (retrained, resumed); otherwise
    returns it as is. Threads asking at once wait for one conversion; processes may both convert, and the
    atomic rename leaves one complete file either way.

    Args:
        adapter_dir: The PEFT adapter folder.
        base_gguf: The base GGUF the adapter is served on.

    Returns:
        The path of the GGUF LoRA file.

    Raises:
        WorkbenchError: As `convert_adapter`.
    """
    adapter_dir = Path(adapter_dir)
    out_file = adapter_dir / GGUF_FILE
    with _lock_for(out_file):
        stored = _stored_sha(out_file)
        if stored is not None and stored == adapter_sha256(adapter_dir):
            return out_file
        return convert_adapter(adapter_dir, base_gguf, out_file)
