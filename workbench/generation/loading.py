"""Load a base model and its tokenizer, pick device and dtype, and attach LoRA adapters.

`load_base(base, settings)` handles the three kinds of `registry.BaseModel`:
- gguf: the first load dequantizes the GGUF with transformers' own GGUF support (about 16 s for the
  embedded model on 2 cores) and saves the result once as safetensors under `models/base/<name>/`,
  written to a temporary folder and renamed, so every later start loads that folder in well under 2 s;
- folder: a local transformers model folder, never touching the network;
- hub: a Hugging Face hub id the user named (the only path that may download).

`trust_remote_code` is passed only when the user opted in (settings or a registry entry).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.registry import Adapter, BaseModel

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
# The file in a saved GGUF tokenizer folder that says which file (size, modification time) it was read from.
TOKENIZER_STAMP = "workbench-source.json"

# The template training declares when it teaches a base model (one without a chat template) to chat: plain
# ChatML, what most small instruct models use. It is saved beside the adapter (CHAT_TEMPLATE_FILE) and the
# chat uses it with that adapter; the base model itself is never given a template it never saw.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
DECLARED_TEMPLATES = {"chatml": CHATML_TEMPLATE}


def declared_template(name: str) -> str:
    """The text of a template training may declare: "chatml", or a `.jinja` file's path."""
    if name in DECLARED_TEMPLATES:
        return DECLARED_TEMPLATES[name]
    path = Path(name).expanduser()
    if path.suffix != ".jinja" or not path.is_file():
        raise WorkbenchError(f"The chat template must be 'chatml' or a .jinja file, and {name!r} is neither.")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"{path} cannot be read as UTF-8 ({exc}).") from None


@dataclass
class LoadedModel:
    """A base model in memory.

    Attributes:
        model: The transformers causal LM (in eval mode).
        tokenizer: Its tokenizer, with a pad token and a chat template.
        base: What was loaded.
        device: The torch device string ("cpu", "cuda:0", ...).
        dtype: The torch dtype of the weights.
        load_seconds: Wall time of this load.
        converted: True when this load converted a GGUF (the slow first start).
    """

    model: Any
    tokenizer: Any
    base: BaseModel
    device: str
    dtype: torch.dtype
    load_seconds: float
    converted: bool = False

    @property
    def context_window(self) -> int:
        """Maximum tokens (prompt plus reply) the model accepts."""
        config = self.model.config
        return int(getattr(config, "max_position_embeddings", 0) or self.tokenizer.model_max_length)


def choose_device(settings: Settings) -> str:
    """The device to run on: the configured one, else CUDA when present, else CPU."""
    import torch

    if settings.device != "auto":
        if settings.device.startswith("cuda") and not torch.cuda.is_available():
            raise WorkbenchError(f"Device {settings.device!r} was asked for, but no CUDA GPU is available.")
        if settings.device == "mps" and not torch.backends.mps.is_available():
            raise WorkbenchError("Device 'mps' was asked for, but Apple's MPS backend is not available.")
        return settings.device
    return "cuda" if torch.cuda.is_available() else "cpu"


def choose_dtype(settings: Settings, device: str) -> torch.dtype:
    """The weight dtype: the configured one, else bf16 on a GPU and fp32 on the CPU.

    fp32 is the CPU default because `python -m workbench bench` measured it faster than bf16 for
    generation on the CPUs we run on (no AMX), and it is exact for evaluation.
    """
    import torch

    if settings.dtype != "auto":
        return getattr(torch, settings.dtype)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _quiet_transformers() -> None:
    # The GGUF converter and weight loader draw progress bars on stderr; a CLI user asked for a reply.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _convert_gguf(base: BaseModel, target: Path) -> None:
    """Dequantize a GGUF once and save it as a safetensors model folder at `target`, atomically."""
    from transformers import AutoModelForCausalLM

    gguf = Path(base.source)
    log.info("converting %s to safetensors under %s (first start only)", gguf.name, target)
    tokenizer, flags = _gguf_tokenizer(base)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # transformers marks a GGUF-loaded model as quantized and refuses to save it; the weights are
    # already dequantized to plain tensors, so clearing the flag saves an ordinary checkpoint.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = base.name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _record_flags(tmp, flags)
        # If another process finished the same conversion first, the rename fails and theirs stands.
        with contextlib.suppress(OSError):
            os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cached_conversion(base: BaseModel, settings: Settings) -> Path:
    """The safetensors folder for a GGUF base, converting it on first use."""
    from workbench.generation.fetch import local_file

    target = settings.base_dir / base.cache_name
    if not (target / "config.json").is_file():
        _convert_gguf(local_file(base), target)
    return target


def _prepare_tokenizer(tokenizer: Any) -> Any:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = None  # a base model: the engine serves it in completion mode
    return tokenizer


def _carry_gguf_flags(tokenizer: Any, gguf: Path) -> dict[str, bool]:
    """Make the converted tokenizer start and end texts as the GGUF says (`tokenizer.ggml.add_bos_token` and
    `add_eos_token`); returns the flags to record in tokenizer_config.json. A GGUF that says nothing keeps
    what the tokenizer does."""
    from workbench.generation.modelinfo import gguf_tokenizer

    flags = gguf_tokenizer(gguf)
    wanted = {k: v for k, v in (("add_bos_token", flags.add_bos), ("add_eos_token", flags.add_eos)) if v is not None}
    for name, value in wanted.items():
        setattr(tokenizer, name, bool(value))
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    if flags.add_bos is not None and bool(ids and ids[0] == tokenizer.bos_token_id) != bool(flags.add_bos):
        raise WorkbenchError(
            f"The tokenizer converted from {gguf.name} does not {'add' if flags.add_bos else 'leave out'} BOS as "
            "the file says; perplexity and training would be measured wrong, so the conversion stops here."
        )
    return {name: bool(value) for name, value in wanted.items()}


def _record_flags(folder: Path, flags: dict[str, bool]) -> None:
    # transformers does not always write these flags back; the cached folder keeps what the GGUF said.
    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config.update(flags)
    config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")


def model_source(base: BaseModel, settings: Settings) -> tuple[str, bool, bool]:
    """Where transformers loads `base` from: (folder or hub id, local files only, trust remote code).

    A GGUF base is converted on first use and then loaded from its cached safetensors folder.
    """
    if base.kind == "gguf":
        source, local = str(cached_conversion(base, settings)), True
    else:
        source, local = base.source, base.kind == "folder"
    return source, local, base.trust_remote_code or settings.trust_remote_code


def _gguf_tokenizer(base: BaseModel) -> tuple[Any, dict[str, bool]]:
    """The tokenizer a GGUF holds, set to add BOS/EOS as the file says (the one the conversion saves), and
    those flags."""
    from transformers import AutoTokenizer

    from workbench.generation.fetch import local_file

    gguf = Path(local_file(base).source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except (OSError, ValueError) as exc:
        raise WorkbenchError(
            f"The tokenizer of {base.name!r} could not be read from {gguf.name}: {_first_line(exc)}"
        ) from None
    return tokenizer, _carry_gguf_flags(tokenizer, gguf)


def _cached_gguf_tokenizer(base: BaseModel, settings: Settings) -> Any:
    """The GGUF's tokenizer from a small folder saved the first time (`models/base/NAME.tokenizer`, valid while
    the file's size and modification time are those recorded in it), else read from the GGUF and saved there.

    Why a cache of our own: transformers reads a GGUF's tokenizer by parsing every metadata field with numpy
    (3.3 s for SmolLM2's 49,152 tokens on 2 cores, most of a fresh start's load), a saved folder in 0.2 s; the
    conversion folder cannot hold it, since its config.json marks the weights as converted.
    """
    from transformers import AutoTokenizer

    from workbench.generation.fetch import local_file

    gguf = Path(local_file(base).source)
    stat = gguf.stat()
    stamp = {"file": gguf.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    folder = settings.base_dir / f"{base.cache_name}.tokenizer"
    with contextlib.suppress(OSError, ValueError):  # no cache yet, or a damaged one: read the GGUF again
        if json.loads((folder / TOKENIZER_STAMP).read_text(encoding="utf-8")) == stamp:
            return AutoTokenizer.from_pretrained(folder, local_files_only=True)
    tokenizer, flags = _gguf_tokenizer(base)
    with contextlib.suppress(OSError):  # a read-only models folder: serve without the cache
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            tokenizer.save_pretrained(tmp)
            _record_flags(tmp, flags)
            (tmp / TOKENIZER_STAMP).write_text(json.dumps(stamp), encoding="utf-8")
            shutil.rmtree(folder, ignore_errors=True)  # a stale one (the file changed)
            os.rename(tmp, folder)  # whole or not at all; if another process got there first, theirs stands
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return tokenizer


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def load_tokenizer(base: BaseModel, settings: Settings) -> Any:
    """The base model's tokenizer, with a pad token and a chat template, without loading its weights."""
    from transformers import AutoTokenizer

    if not base.usable:
        raise WorkbenchError(base.reason)
    _quiet_transformers()
    if base.kind == "gguf" and not (settings.base_dir / base.cache_name / "config.json").is_file():
        # Not converted yet (a fresh Space): llama.cpp needs only the tokenizer, which the GGUF holds, so the
        # first start reads it from there (3.3 s) instead of converting the whole model first (about 16 s), and
        # later starts from the folder it saves; the conversion waits until something needs the weights.
        return _prepare_tokenizer(_cached_gguf_tokenizer(base, settings))
    source, local, trust = model_source(base, settings)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local, trust_remote_code=trust)
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"The tokenizer of {base.name!r} could not be loaded: {_first_line(exc)}") from None
    return _prepare_tokenizer(tokenizer)


def load_base(base: BaseModel, settings: Settings) -> LoadedModel:
    """Load `base` onto the chosen device and dtype.

    Raises:
        WorkbenchError: The model is missing, offline, or cannot be read, in one sentence.
    """
    from transformers import AutoModelForCausalLM

    started = time.perf_counter()
    device = choose_device(settings)
    dtype = choose_dtype(settings, device)
    converted = base.kind == "gguf" and not (settings.base_dir / base.cache_name / "config.json").is_file()
    tokenizer = load_tokenizer(base, settings)
    source, local, trust = model_source(base, settings)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source, local_files_only=local, trust_remote_code=trust, dtype=dtype
        )
    except (OSError, ValueError) as exc:
        where = "on disk" if local else "on disk or on the hub"
        raise WorkbenchError(f"Model {base.name!r} could not be loaded {where}: {_first_line(exc)}") from None
    model.to(device)
    model.eval()
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        base=base,
        device=device,
        dtype=dtype,
        load_seconds=time.perf_counter() - started,
        converted=converted,
    )


def attach_adapter(model: Any, adapter: Adapter, key: str) -> Any:
    """Load a PEFT adapter under `key` into `model` (wrapping it in a PeftModel the first time).

    Returns the model to use from now on (the PeftModel). The base weights are never reloaded.
    """
    from peft import PeftModel

    try:
        if isinstance(model, PeftModel):
            model.load_adapter(str(adapter.path), adapter_name=key, is_trainable=False)
            return model
        return PeftModel.from_pretrained(model, str(adapter.path), adapter_name=key, is_trainable=False)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise WorkbenchError(f"Adapter {adapter.name!r} could not be loaded: {str(exc).splitlines()[0]}") from None
