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
    WORKBENCH_ADMIN_TOKEN     when set, admin actions (training, uploads, exports, imports, deletions) need it
    WORKBENCH_ADMIN_OPEN      auto | 1 | 0: without a token, admin actions are open when the app listens on
                              loopback (auto), always (1, an explicit opt-out) or never (0)
    GRADIO_SERVER_NAME        where the app listens (default 127.0.0.1; a Space sets 0.0.0.0)
    WORKBENCH_TRUSTED_PROXIES reverse proxies in front of the app whose X-Forwarded-For is believed (default 1
                              on a Hugging Face Space, else 0); per-visitor limits key on the address they saw
    WORKBENCH_RATE_LIMIT      replies a visitor may ask for per minute (default 20; 0 = no limit)
    WORKBENCH_VOTE_LIMIT      votes a visitor may cast per hour (default 120; 0 = no limit)
    WORKBENCH_QUEUE_SIZE      requests waiting in the app's queue before new ones are turned away (default 64)
    WORKBENCH_VISITOR_MAX_NEW_TOKENS  the most new tokens a visitor may ask for (default 1024)
    SPACE_ID                  set by Hugging Face Spaces: the store defaults to /data (persistent storage) when
                              the Space has it, and the app warns when votes would not survive a restart
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from workbench.access import LOCAL, admin_allowed, check_admin, is_loopback
from workbench.errors import WorkbenchError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
BACKENDS = ("auto", "transformers", "llamacpp")
# Four slots measured best on 2 cores (bare llama.cpp: 124 tok/s alone, 160 with 4 requests, 179 with 8) while
# keeping each request's share of the machine; every slot holds its own KV cache.
DEFAULT_SLOTS = 4
MAX_SLOTS = 64
ADMIN_OPEN = ("auto", "1", "0")
SPACE_DATA = Path("/data")  # a Hugging Face Space's persistent storage, when the Space has it
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
        admin_open: "auto" (admin actions open without a token only when listening on loopback), "1" or "0".
        host: The address the app listens on; decides "auto" above.
        trusted_proxies: Reverse proxies whose X-Forwarded-For entry names the client (1 on a Space).
        rate_limit: Replies per visitor per minute (0: unlimited).
        vote_limit: Votes per visitor per hour (0: unlimited).
        queue_size: Requests that may wait in the app's queue.
        visitor_max_new_tokens: The most new tokens a visitor (anyone but an admin) may ask for.
        space: Running on a Hugging Face Space (SPACE_ID is set).
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
    admin_open: str = "auto"
    host: str = "127.0.0.1"
    trusted_proxies: int = 0
    rate_limit: int = 20
    vote_limit: int = 120
    queue_size: int = 64
    visitor_max_new_tokens: int = 1024
    space: bool = False

    def __post_init__(self) -> None:
        home = Path(self.home).expanduser().resolve()
        object.__setattr__(self, "home", home)
        models = Path(self.models_dir).expanduser().resolve() if self.models_dir else home / "models"
        object.__setattr__(self, "models_dir", models)
        adapters = Path(self.adapters_dir).expanduser().resolve() if self.adapters_dir else models / "adapters"
        object.__setattr__(self, "adapters_dir", adapters)
        if not self.db_url:
            # A Space keeps only /data across restarts; the repository folder is rebuilt on each one.
            folder = SPACE_DATA / "workbench" if self.space and SPACE_DATA.is_dir() else home / "var"
            object.__setattr__(self, "db_url", f"sqlite:///{folder / 'workbench.db'}")
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
        if str(self.admin_open).strip().lower() not in ADMIN_OPEN:
            raise WorkbenchError(f"WORKBENCH_ADMIN_OPEN must be auto, 1 or 0, not {self.admin_open!r}.")
        object.__setattr__(self, "admin_open", str(self.admin_open).strip().lower())
        for key, name, high in (
            ("trusted_proxies", "Trusted proxies (WORKBENCH_TRUSTED_PROXIES)", 8),
            ("rate_limit", "Rate limit (WORKBENCH_RATE_LIMIT)", 100_000),
            ("vote_limit", "Vote limit (WORKBENCH_VOTE_LIMIT)", 1_000_000),
            ("queue_size", "Queue size (WORKBENCH_QUEUE_SIZE)", 100_000),
            ("visitor_max_new_tokens", "Visitor max new tokens (WORKBENCH_VISITOR_MAX_NEW_TOKENS)", 1 << 20),
        ):
            object.__setattr__(self, key, _whole(name, getattr(self, key), 0, high))
        if self.queue_size < 1:
            raise WorkbenchError("Queue size (WORKBENCH_QUEUE_SIZE) must be at least 1.")

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

    @property
    def admin_without_token(self) -> bool:
        """Whether admin actions are open when no token is set: on loopback (auto), or by explicit opt-out."""
        return self.admin_open == "1" or (self.admin_open == "auto" and is_loopback(self.host))

    @property
    def store_survives_restart(self) -> bool:
        """False on a Space whose SQLite store is outside its persistent /data (votes vanish on restart)."""
        if not self.space or not str(self.db_url).startswith("sqlite"):
            return True
        return str(self.db_url).removeprefix("sqlite:///").startswith(str(SPACE_DATA) + "/")

    def check_admin(self, token: str | None, who: str = LOCAL) -> None:
        """Raise WorkbenchError unless an admin action may go ahead (see `workbench.access`)."""
        check_admin(self.admin_token, self.admin_without_token, token, who)

    def admin_allowed(self, token: str | None) -> bool:
        """Whether `token` (or none) unlocks admin actions, for what a page shows."""
        return admin_allowed(self.admin_token, self.admin_without_token, token)

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
            "WORKBENCH_ADMIN_OPEN": self.admin_open,
            "GRADIO_SERVER_NAME": self.host,
            "WORKBENCH_TRUSTED_PROXIES": str(self.trusted_proxies),
            "WORKBENCH_RATE_LIMIT": str(self.rate_limit),
            "WORKBENCH_VOTE_LIMIT": str(self.vote_limit),
            "WORKBENCH_QUEUE_SIZE": str(self.queue_size),
            "WORKBENCH_VISITOR_MAX_NEW_TOKENS": str(self.visitor_max_new_tokens),
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
            ("admin_open", "WORKBENCH_ADMIN_OPEN"),
            ("host", "GRADIO_SERVER_NAME"),
            ("trusted_proxies", "WORKBENCH_TRUSTED_PROXIES"),
            ("rate_limit", "WORKBENCH_RATE_LIMIT"),
            ("vote_limit", "WORKBENCH_VOTE_LIMIT"),
            ("queue_size", "WORKBENCH_QUEUE_SIZE"),
            ("visitor_max_new_tokens", "WORKBENCH_VISITOR_MAX_NEW_TOKENS"),
        ):
            if env.get(name):
                values[key] = env[name].strip()
        if env.get("SPACE_ID"):
            values["space"] = True
            values.setdefault("trusted_proxies", 1)  # the Space's own proxy
        if "WORKBENCH_TRUST_REMOTE_CODE" in env:
            values["trust_remote_code"] = _flag("WORKBENCH_TRUST_REMOTE_CODE", env["WORKBENCH_TRUST_REMOTE_CODE"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
