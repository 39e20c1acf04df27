"""Workbench settings: where models, adapters and the store live, and which model to load.

`Settings.from_env()` reads the environment when it is called (never at import time); every field can
also be given directly, which is what tests do. The dataclass is frozen and checks itself, so a bad
value fails where it is read, with one sentence naming the variable.

Environment variables:
    WORKBENCH_HOME            root folder for models/ and var/ (default: the repository root)
    WORKBENCH_MODELS_DIR      the model store: registry.yaml, base/, adapters/ (default: HOME/models)
    WORKBENCH_ADAPTERS_DIR    where LoRA adapters are found and written (default: MODELS_DIR/adapters)
    WORKBENCH_DB_URL          SQLAlchemy URL of the store (default: sqlite under HOME/var/)
    WORKBENCH_MODEL           base model: a registry name, a local folder or a Hugging Face hub id
    WORKBENCH_DEVICE          auto | cpu | cuda | cuda:N | mps
    WORKBENCH_DTYPE           auto | float32 | bfloat16 | float16
    WORKBENCH_BACKEND         auto | transformers | llamacpp: what generates text (auto: llama.cpp for a GGUF
                              base without a GPU, transformers otherwise)
    WORKBENCH_SLOTS           requests llama.cpp serves at once (default 4)
    WORKBENCH_CONTEXT         tokens per request on llama.cpp (default: the model's, at most 4096)
    WORKBENCH_REMOTE_RETRIES  retries of a remote model's request after 429, 5xx or a timeout (default 2)
    WORKBENCH_REMOTE_TIMEOUT  seconds a remote model may take to answer, per attempt (default 60)
    WORKBENCH_TRUST_REMOTE_CODE   1 to allow a hub model's own code to run (off by default)
    WORKBENCH_ADMIN_TOKEN     when set, starting jobs and exporting or deleting data need this token
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from workbench.errors import WorkbenchError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
BACKENDS = ("auto", "transformers", "llamacpp")
# Four slots measured best on 2 cores (bare llama.cpp: 124 tok/s alone, 160 with 4 requests, 179 with 8) while
# keeping each request's share of the machine; every slot holds its own KV cache.
DEFAULT_SLOTS = 4
MAX_SLOTS = 64
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _flag(name: str, value: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise WorkbenchError(f"{name} must be 1 or 0, not {value!r}.")


def _whole(name: str, value: object, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise WorkbenchError(f"{name} must be a whole number, not {value!r}.") from None
    if not low <= number <= high:
        raise WorkbenchError(f"{name} must be between {low} and {high}, not {number}.")
    return number


def _seconds(name: str, value: object) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise WorkbenchError(f"{name} must be a number of seconds, not {value!r}.") from None
    if not 0.1 <= number <= 3600:
        raise WorkbenchError(f"{name} must be between 0.1 and 3600 seconds, not {value!r}.")
    return number


@dataclass(frozen=True)
class Settings:
    """Where things live and how the base model is loaded.

    Attributes:
        home: Root folder; `models/` and `var/` default to folders inside it.
        models_dir: The model store (registry.yaml, base/ for cached conversions, adapters/).
        adapters_dir: Folder scanned for LoRA adapters and written by training runs.
        db_url: SQLAlchemy URL of the store; SQLite under `home/var/` unless set.
        model: Base model to load: a registry name, a folder or a hub id; None means the embedded model.
        device: "auto" picks CUDA when present, else CPU; or name one ("cpu", "cuda:1", "mps").
        dtype: "auto" picks bfloat16 on CUDA and float32 on CPU; or name one.
        trust_remote_code: Let a hub model run its own Python code. Off unless the user opts in.
        admin_token: When set, starting jobs, exporting and deleting data require it.
        backend: What generates text: "transformers", "llamacpp", or "auto" (llama.cpp for a GGUF base model
            when no GPU is present, transformers otherwise).
        slots: How many requests the llama.cpp backend serves at once (continuous batching), 1 to 64.
        context: Tokens (prompt plus reply) per request on llama.cpp; 0 means the model's own, at most 4096.
        remote_retries: How often a remote model's request is retried after 429, a 5xx or a timeout (with
            exponential backoff and jitter, honouring Retry-After: the openai client's own retries).
        remote_timeout: Seconds a remote model may take per attempt (connect, then between streamed chunks).
    """

    home: Path = REPO_ROOT
    models_dir: Path | None = None
    adapters_dir: Path | None = None
    db_url: str | None = None
    model: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    admin_token: str | None = field(default=None, repr=False)
    backend: str = "auto"
    slots: int = DEFAULT_SLOTS
    context: int = 0
    remote_retries: int = 2
    remote_timeout: float = 60.0

    def __post_init__(self) -> None:
        home = Path(self.home).expanduser().resolve()
        object.__setattr__(self, "home", home)
        models = Path(self.models_dir).expanduser().resolve() if self.models_dir else home / "models"
        object.__setattr__(self, "models_dir", models)
        adapters = Path(self.adapters_dir).expanduser().resolve() if self.adapters_dir else models / "adapters"
        object.__setattr__(self, "adapters_dir", adapters)
        if not self.db_url:
            object.__setattr__(self, "db_url", f"sqlite:///{home / 'var' / 'workbench.db'}")
        if self.device.split(":")[0] not in DEVICES:
            raise WorkbenchError(f"Device must be one of {', '.join(DEVICES)} (or cuda:N), not {self.device!r}.")
        if self.dtype not in DTYPES:
            raise WorkbenchError(f"Dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}.")
        if self.model is not None and not self.model.strip():
            object.__setattr__(self, "model", None)
        if self.admin_token is not None and not self.admin_token.strip():
            object.__setattr__(self, "admin_token", None)
        if self.backend not in BACKENDS:
            raise WorkbenchError(f"Backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}.")
        object.__setattr__(self, "slots", _whole("Slots (WORKBENCH_SLOTS)", self.slots, 1, MAX_SLOTS))
        object.__setattr__(self, "context", _whole("Context (WORKBENCH_CONTEXT)", self.context, 0, 1 << 20))
        object.__setattr__(
            self, "remote_retries", _whole("Remote retries (WORKBENCH_REMOTE_RETRIES)", self.remote_retries, 0, 20)
        )
        object.__setattr__(
            self, "remote_timeout", _seconds("Remote timeout (WORKBENCH_REMOTE_TIMEOUT)", self.remote_timeout)
        )

    @property
    def base_dir(self) -> Path:
        """Folder of cached base-model conversions (`models/base/<name>/`)."""
        return self.models_dir / "base"

    @property
    def registry_file(self) -> Path:
        """The optional `models/registry.yaml` naming extra base models."""
        return self.models_dir / "registry.yaml"

    @property
    def var_dir(self) -> Path:
        """Folder for run-time state: the SQLite store, results, job logs."""
        return self.home / "var"

    def check_admin(self, token: str | None) -> None:
        """Raise unless `token` matches the admin token (always passes when none is set)."""
        if self.admin_token is None:
            return
        import hmac

        if not token or not hmac.compare_digest(token.encode(), self.admin_token.encode()):
            raise WorkbenchError("This action needs the admin token (WORKBENCH_ADMIN_TOKEN is set on this server).")

    def to_env(self) -> dict[str, str]:
        """These settings as WORKBENCH_* variables for a child process (`from_env` reads them back). The admin
        token is left out: a child that needs it is given it on purpose."""
        env = {
            "WORKBENCH_HOME": str(self.home),
            "WORKBENCH_MODELS_DIR": str(self.models_dir),
            "WORKBENCH_ADAPTERS_DIR": str(self.adapters_dir),
            "WORKBENCH_DB_URL": str(self.db_url),
            "WORKBENCH_DEVICE": self.device,
            "WORKBENCH_DTYPE": self.dtype,
            "WORKBENCH_TRUST_REMOTE_CODE": "1" if self.trust_remote_code else "0",
            "WORKBENCH_BACKEND": self.backend,
            "WORKBENCH_SLOTS": str(self.slots),
            "WORKBENCH_CONTEXT": str(self.context),
            "WORKBENCH_REMOTE_RETRIES": str(self.remote_retries),
            "WORKBENCH_REMOTE_TIMEOUT": str(self.remote_timeout),
        }
        if self.model:
            env["WORKBENCH_MODEL"] = self.model
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from environment variables; keyword arguments win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if env.get("WORKBENCH_HOME"):
            values["home"] = Path(env["WORKBENCH_HOME"])
        for key, name in (("models_dir", "WORKBENCH_MODELS_DIR"), ("adapters_dir", "WORKBENCH_ADAPTERS_DIR")):
            if env.get(name):
                values[key] = Path(env[name])
        for key, name in (
            ("db_url", "WORKBENCH_DB_URL"),
            ("model", "WORKBENCH_MODEL"),
            ("device", "WORKBENCH_DEVICE"),
            ("dtype", "WORKBENCH_DTYPE"),
            ("admin_token", "WORKBENCH_ADMIN_TOKEN"),
            ("backend", "WORKBENCH_BACKEND"),
            ("slots", "WORKBENCH_SLOTS"),
            ("context", "WORKBENCH_CONTEXT"),
            ("remote_retries", "WORKBENCH_REMOTE_RETRIES"),
            ("remote_timeout", "WORKBENCH_REMOTE_TIMEOUT"),
        ):
            if env.get(name):
                values[key] = env[name].strip()
        if "WORKBENCH_TRUST_REMOTE_CODE" in env:
            values["trust_remote_code"] = _flag("WORKBENCH_TRUST_REMOTE_CODE", env["WORKBENCH_TRUST_REMOTE_CODE"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
