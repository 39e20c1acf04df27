"""Remote models: a model served by an OpenAI-compatible server, as `models/registry.yaml` names it.

    models:
      - name: gpt4o-mini
        backend: openai
        base_url: https://api.openai.com/v1      # or http://host:8000/v1 for vLLM, TGI, llama.cpp, Ollama
        model: gpt-4o-mini
        api_key_env: OPENAI_API_KEY              # the key's variable; the key itself never goes in a file
        adapters: {my-run: my-run}               # optional: Workbench adapter name -> the server's model name
        sampling: {top_k: top_k, min_p: min_p, repetition_penalty: repetition_penalty}   # optional, see below
        logprobs: true                           # optional: the server returns token log-probabilities

The OpenAI API has temperature, top-p, max tokens, seed and stop strings. Top-k, min-p and the repetition
penalty are sent only to servers the entry says take them, under the server's own field names (vLLM and Workbench:
`top_k`, `min_p`, `repetition_penalty`; llama.cpp's server: `top_k`, `min_p`, `repeat_penalty`); elsewhere
replies record them as not applied. The adapter strength is sent the same way to a server whose entry maps it
(a Workbench server: `adapter_strength: adapter_strength`); another server's adapter cannot be scaled, so a request
for one of its adapters at a strength other than 1 is refused in one sentence rather than answered as trained
(its base model, which has no adapter, ignores the strength as a local base does). Torch-free; nothing here
talks to the network.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from workbench.errors import WorkbenchError

BACKEND = "openai"
SAMPLING = ("top_k", "min_p", "repetition_penalty", "adapter_strength")  # our settings a server may or may not take
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")
_KEYS = {"name", "backend", "base_url", "model", "api_key_env", "adapters", "sampling", "logprobs"}


@dataclass(frozen=True)
class RemoteModel:
    """Where and how to reach one remote model.

    Attributes:
        base_url: The API root, e.g. "https://api.openai.com/v1" (no credentials in it).
        model: The server's name for the base model.
        api_key_env: The environment variable holding the API key, or None when the server needs none.
        adapters: (Workbench adapter name, the server's model name) pairs: LoRA adapters the server serves.
        sampling: (our setting, the server's field) pairs for settings beyond the OpenAI API it takes.
        logprobs: Whether the server returns token log-probabilities (chat `logprobs`/`top_logprobs`).
    """

    base_url: str
    model: str
    api_key_env: str | None = None
    adapters: tuple[tuple[str, str], ...] = ()
    sampling: tuple[tuple[str, str], ...] = ()
    logprobs: bool = True

    def api_key(self) -> str | None:
        """The API key from its environment variable (read when asked, never stored)."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def server_model(self, adapter: str | None) -> str:
        """The `model` field of a request: the base's, or the adapter's name on the server."""
        return dict(self.adapters)[adapter] if adapter else self.model

    def check_strength(self, adapter: str | None, strength: float) -> None:
        """Refuse, in one sentence, an adapter strength other than 1 that this server cannot apply."""
        if adapter and strength != 1 and "adapter_strength" not in dict(self.sampling):
            raise WorkbenchError(
                f"{self.base_url} serves adapter {adapter!r} as trained only: set the adapter strength to 1, or map "
                "adapter_strength in its registry entry's sampling if the server is a Workbench."
            )

    def unusable_reason(self) -> str:
        """Why requests cannot be sent now (a missing key), or ""."""
        if self.api_key_env and not self.api_key():
            return f"set {self.api_key_env} to the API key of {self.base_url}."
        return ""


def _mapping(entry: dict, key: str, where: str) -> dict[str, str]:
    value = entry.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise WorkbenchError(f"{where}: {key} must map names to names, such as {{my-run: my-run}}.")
    return value


def remote_from_entry(entry: dict[str, Any], where: str) -> RemoteModel:
    """Check one `backend: openai` registry entry and describe it; one clear sentence for a bad one."""
    unknown = sorted(set(entry) - _KEYS)
    if "api_key" in unknown:
        raise WorkbenchError(
            f"{where}: an API key never goes in registry.yaml; put it in an environment variable and name that "
            "variable with api_key_env."
        )
    if unknown:
        raise WorkbenchError(f"{where}: unknown field {unknown[0]!r}; the fields are {', '.join(sorted(_KEYS))}.")
    if entry.get("backend") != BACKEND:
        raise WorkbenchError(f"{where}: backend must be {BACKEND!r} for a remote model.")
    url = str(entry.get("base_url") or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WorkbenchError(f"{where}: base_url must be an http(s) URL such as https://api.openai.com/v1.")
    if parts.username or parts.password or parts.query:
        raise WorkbenchError(f"{where}: base_url must not carry credentials or a query; use api_key_env.")
    model = entry.get("model")
    if not isinstance(model, str) or not model.strip():
        raise WorkbenchError(f"{where}: model must name the server's model, such as gpt-4o-mini.")
    env = entry.get("api_key_env")
    if env is not None and (not isinstance(env, str) or not _ENV_NAME.match(env)):
        raise WorkbenchError(f"{where}: api_key_env must be the name of an environment variable, not the key.")
    adapters = _mapping(entry, "adapters", where)
    bad = [name for name in adapters if not _NAME.match(name) or ".." in name]
    if bad:
        raise WorkbenchError(f"{where}: adapter name {bad[0]!r} must be letters, digits, '.', '-', '_' (and one '/').")
    sampling = _mapping(entry, "sampling", where)
    if set(sampling) - set(SAMPLING):
        raise WorkbenchError(f"{where}: sampling may map {' and '.join(SAMPLING)} to the server's field names.")
    logprobs = entry.get("logprobs", True)
    if not isinstance(logprobs, bool):
        raise WorkbenchError(f"{where}: logprobs must be true or false.")
    return RemoteModel(
        base_url=urlunsplit(parts),
        model=model.strip(),
        api_key_env=env,
        adapters=tuple(sorted(adapters.items())),
        sampling=tuple(sorted(sampling.items())),
        logprobs=logprobs,
    )
