"""Workbench settings: where models, adapters and the store live, which model to load, who may do what.

`Settings.from_env()` reads the environment when it is called (never at import time); every field can
also be given directly, which is what tests do. The dataclass is frozen and checks itself, so a bad
value fails where it is read, with one sentence naming the variable.

Each setting is declared once, as a field with `setting(default, ENV, parser, help)`; reading the environment
(`from_env`), writing it for a child process (`to_env`), the error sentences ("Slots (WORKBENCH_SLOTS) must be
between 1 and 64, not 0.") and the reference table (`reference()`, docs/reference.md) all come from that one
declaration. A parser is `parse(label, value) -> value`: it takes a string from the environment or a typed value
from code and returns the clean value, or raises WorkbenchError with one sentence that starts with `label`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from workbench.access import SHELL, Caller, Policy, is_loopback, voter_secret
from workbench.errors import WorkbenchError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
BACKENDS = ("auto", "transformers", "llamacpp")
MAX_SLOTS = 64
ADMIN_OPEN = ("auto", "1", "0")
TRAIN_ALLOCATORS = ("auto", "system")  # WORKBENCH_TRAIN_ALLOCATOR; workbench.training.allocator reads it
PAIR_MODES = ("adaptive", "uniform")  # WORKBENCH_PAIRS; workbench.ratings.sampler.MODES is this
SPACE_DATA = Path("/data")  # a Hugging Face Space's persistent storage, when the Space has it
Parser = Callable[[str, Any], Any]
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class Spec:
    """One setting's declaration.

    Attributes:
        env: The environment variable that sets it.
        parse: Reads and checks a value (see the module docstring).
        help: One line for the reference: what it does and what its values mean.
        default: The default in words for the reference, when it is derived rather than a literal.
        child: Whether `to_env` passes it to a child process (a secret is given to a child on purpose only).
    """

    env: str
    parse: Parser
    help: str
    default: str = ""
    child: bool = True


def setting(default: Any, env: str, parse: Parser, help: str, *, documented: str = "", child: bool = True) -> Any:
    """A dataclass field declared with its Spec (`slots: int = setting(4, "WORKBENCH_SLOTS", whole(1, 64), ...)`)."""
    return field(default=default, metadata={"spec": Spec(env, parse, help, documented, child)}, repr=child)


def label_of(name: str, env: str) -> str:
    """The name a sentence uses for a setting: "Slots (WORKBENCH_SLOTS)"."""
    return f"{name.replace('_', ' ').capitalize()} ({env})"


# --- parsers ---------------------------------------------------------------------------------------------------


def whole(low: int, high: int) -> Parser:
    """A whole number from `low` to `high`."""

    def parse(label: str, value: Any) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise WorkbenchError(f"{label} must be a whole number, not {value!r}.") from None
        if not low <= number <= high:
            raise WorkbenchError(f"{label} must be between {low} and {high}, not {number}.")
        return number

    return parse


def seconds(low: float, high: float) -> Parser:
    """A number of seconds from `low` to `high`."""

    def parse(label: str, value: Any) -> float:
        try:
            number = float(str(value).strip())
        except ValueError:
            raise WorkbenchError(f"{label} must be a number of seconds, not {value!r}.") from None
        if not low <= number <= high:
            raise WorkbenchError(f"{label} must be between {low:g} and {high:g} seconds, not {value!r}.")
        return number

    return parse


def choice(*options: str, prefixed: tuple[str, ...] = ()) -> Parser:
    """One of `options` (case-insensitive), or a name starting with one of `prefixed` + ":" (like cuda:1)."""

    def parse(label: str, value: Any) -> str:
        text = str(value).strip().lower()
        if text in options or any(text.startswith(f"{p}:") and text[len(p) + 1 :].isdigit() for p in prefixed):
            return text
        extra = f" (or {', '.join(f'{p}:N' for p in prefixed)})" if prefixed else ""
        raise WorkbenchError(f"{label} must be one of {', '.join(options)}{extra}, not {value!r}.")

    return parse


def flag(label: str, value: Any) -> bool:
    """1/0, true/false, yes/no, on/off."""
    if isinstance(value, bool):
        return value
    low = str(value).strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise WorkbenchError(f"{label} must be 1 or 0, not {value!r}.")


def text(label: str, value: Any) -> str | None:
    """Any text; empty means unset (None)."""
    if value is None:
        return None
    cleaned = str(value).strip()
    return cleaned or None


def key_text(label: str, value: Any) -> str | None:
    """A secret key: at least 32 characters (what `secrets.token_hex(16)` gives); empty means unset. Never quoted
    back in an error."""
    cleaned = text(label, value)
    if cleaned is not None and len(cleaned) < 32:
        raise WorkbenchError(
            f"{label} must be at least 32 characters long (python -c 'import secrets; print(secrets.token_hex(32))')."
        )
    return cleaned


def folder(label: str, value: Any) -> Path | None:
    """A folder path (made absolute, `~` expanded); empty means unset."""
    if value is None or not str(value).strip():
        return None
    return Path(str(value).strip()).expanduser().resolve()


def host_list(label: str, value: Any) -> tuple[str, ...]:
    """Host names or addresses, separated by commas (a tuple from code is taken as is)."""
    items = value if isinstance(value, (tuple, list)) else str(value or "").split(",")
    hosts = tuple(h.strip().lower() for h in items if str(h).strip())
    for host in hosts:
        if not host.replace(".", "").replace("-", "").replace(":", "").replace("*", "").isalnum():
            raise WorkbenchError(f"{label} must list host names separated by commas, not {host!r}.")
    return hosts


def kinds(*options: str) -> Parser:
    """Some of `options`, separated by commas (a tuple from code is taken as is); empty means none."""

    def parse(label: str, value: Any) -> tuple[str, ...]:
        items = value if isinstance(value, (tuple, list)) else str(value or "").split(",")
        chosen = tuple(dict.fromkeys(str(i).strip().lower() for i in items if str(i).strip()))
        unknown = [c for c in chosen if c not in options]
        if unknown:
            raise WorkbenchError(f"{label} lists {unknown[0]!r}; it may list {', '.join(options)}.")
        return chosen

    return parse


def secrets_list(label: str, value: Any) -> tuple[str, ...]:
    """Secrets separated by commas, each at least 16 characters (a tuple from code is checked the same way); the
    sentence never quotes one."""
    items = value if isinstance(value, (tuple, list)) else str(value or "").split(",")
    keys = tuple(dict.fromkeys(str(k).strip() for k in items if str(k).strip()))
    if any(len(k) < 16 or any(c.isspace() for c in k) for k in keys):
        raise WorkbenchError(f"{label} must list keys of at least 16 characters without spaces, separated by commas.")
    return keys


def address(label: str, value: Any) -> str:
    """A host name or IP address to listen on."""
    name = str(value).strip()
    if not name:
        raise WorkbenchError(f"{label} must name an address to listen on, such as 127.0.0.1 or 0.0.0.0.")
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        if not name.replace(".", "").replace("-", "").isalnum():
            raise WorkbenchError(f"{label} must be a host name or an IP address, not {value!r}.") from None
    return name


def dataset_id(label: str, value: Any) -> str | None:
    """A Hugging Face repository id, "user/name" (empty means unset)."""
    name = str(value or "").strip()
    if not name:
        return None
    owner, _, repo = name.partition("/")
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    if not owner or not repo or "/" in repo or not set(owner + repo) <= allowed or ".." in name:
        raise WorkbenchError(f"{label} must be a dataset id like user/name, not {value!r}.")
    return name


# --- the machine ---------------------------------------------------------------------------------------------

# The default slot count: SLOTS_PER_CORE per usable core, between AUTO_SLOTS_MIN and AUTO_SLOTS_MAX. Measured on
# 2 cores, bare llama.cpp on the embedded model, 64-token replies, 1/4/8/16 chats at once (issue 18): 4 slots
# 138/172/203/196 tokens/s, 8 slots 136/165/218/215; 2 slots give ~15% less than 4 at 8+ chats. So 4 per core (8
# on a 2-core Space): the same alone, ~8% more with many visitors, fewer of them waiting for a slot, and each slot's
# own KV cache (about 95 MB at 4096 tokens) is small beside a Space's 16 GB. `python -m workbench bench --case
# slot_choice` repeats the sweep on the machine at hand.
SLOTS_PER_CORE = 4
AUTO_SLOTS_MIN = 2
AUTO_SLOTS_MAX = 16


def usable_cores() -> int:
    """The CPU cores this process may use: its affinity mask, capped by a cgroup CPU quota (a container such as a
    Hugging Face Space may see every core of its host but be allowed two)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, cpu_quota() or cores))


def cpu_quota() -> int | None:
    """Whole cores allowed by the cgroup's CPU quota (v2 cpu.max or v1 cfs), rounded up; None without one."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return -(-int(quota) // int(period))
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return -(-quota // period)
    except (OSError, ValueError):
        pass
    return None


def machine_memory() -> int | None:
    """Bytes of memory this process's machine has: MemTotal, capped by a cgroup's limit (a Space's container);
    None where neither can be read."""
    values = []
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            values.append(int(limit))
    except (OSError, ValueError):
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                values.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    return min(values) if values else None


def auto_slots(cores: int | None = None) -> int:
    """The slot count WORKBENCH_SLOTS=0 (the default) means on a machine with `cores` usable cores."""
    cores = usable_cores() if cores is None else cores
    return max(AUTO_SLOTS_MIN, min(AUTO_SLOTS_MAX, SLOTS_PER_CORE * cores))


# --- the settings ----------------------------------------------------------------------------------------------

_SLOTS = f"requests llama.cpp serves at once, 1 to {MAX_SLOTS}; 0 (auto): chosen from the machine's cores"


@dataclass(frozen=True)
class Settings:
    """Where things live, how the base model is loaded and served, and who may do what.

    Every field is declared with its environment variable, parser and help (see `reference()` for the table);
    `home`, `models_dir`, `adapters_dir` and `db_url` derive their defaults from each other.
    """

    home: Path = setting(
        REPO_ROOT, "WORKBENCH_HOME", folder, "root folder for models/ and var/", documented="the repository root"
    )
    models_dir: Path | None = setting(
        None,
        "WORKBENCH_MODELS_DIR",
        folder,
        "the model store: registry.yaml, base/, adapters/",
        documented="HOME/models",
    )
    adapters_dir: Path | None = setting(
        None,
        "WORKBENCH_ADAPTERS_DIR",
        folder,
        "where LoRA adapters are found and written",
        documented="MODELS_DIR/adapters",
    )
    db_url: str | None = setting(
        None,
        "WORKBENCH_DB_URL",
        text,
        "SQLAlchemy URL of the store (sqlite:///..., postgresql+psycopg://...)",
        documented="SQLite under HOME/var/ (under /data on a Space with persistent storage)",
    )
    model: str | None = setting(
        None,
        "WORKBENCH_MODEL",
        text,
        "base model(s): a registry name, a local folder, a .gguf file or a Hugging Face hub id; a comma-separated "
        "list serves several families at once, the first being the main one (see docs/models.md)",
        documented="the embedded SmolLM2-135M-Instruct",
    )
    device: str = setting(
        "auto", "WORKBENCH_DEVICE", choice(*DEVICES, prefixed=("cuda",)), "where a transformers model runs"
    )
    dtype: str = setting(
        "auto", "WORKBENCH_DTYPE", choice(*DTYPES), "weights' type (auto: bfloat16 on CUDA, float32 on the CPU)"
    )
    trust_remote_code: bool = setting(
        False, "WORKBENCH_TRUST_REMOTE_CODE", flag, "1 lets a hub model run its own Python code"
    )
    train_allocator: str = setting(
        "auto",
        "WORKBENCH_TRAIN_ALLOCATOR",
        choice(*TRAIN_ALLOCATORS),
        "a training process's memory allocator (auto: jemalloc where installed, else the system's; system: the "
        "system's; see docs/speed.md)",
    )
    admin_token: str | None = setting(
        None,
        "WORKBENCH_ADMIN_TOKEN",
        text,
        "when set, admin actions (training, uploads, exports, imports, deletions) need it",
        child=False,
    )
    backend: str = setting(
        "auto",
        "WORKBENCH_BACKEND",
        choice(*BACKENDS),
        "what generates text (auto: llama.cpp for a GGUF base without a GPU, transformers otherwise)",
    )
    slots: int = setting(0, "WORKBENCH_SLOTS", whole(0, MAX_SLOTS), _SLOTS, documented="0 (auto: see docs/serving.md)")
    context: int = setting(
        0, "WORKBENCH_CONTEXT", whole(0, 1 << 20), "tokens per request on llama.cpp (0: the model's own, at most 4096)"
    )
    remote_retries: int = setting(
        2, "WORKBENCH_REMOTE_RETRIES", whole(0, 20), "retries of a remote model's request after 429, 5xx or a timeout"
    )
    remote_timeout: float = setting(
        60.0, "WORKBENCH_REMOTE_TIMEOUT", seconds(0.1, 3600), "seconds a remote model may take to answer, per attempt"
    )
    admin_open: str = setting(
        "auto",
        "WORKBENCH_ADMIN_OPEN",
        choice(*ADMIN_OPEN),
        "without a token, admin actions are open only to this machine (auto), to everyone (1) or to no one (0)",
    )
    host: str = setting("127.0.0.1", "GRADIO_SERVER_NAME", address, "where the app listens (a Space sets 0.0.0.0)")
    trusted_proxies: int = setting(
        0,
        "WORKBENCH_TRUSTED_PROXIES",
        whole(0, 8),
        "reverse proxies in front of the app whose X-Forwarded-For is believed; per-visitor limits key on it",
        documented="1 on a Hugging Face Space, else 0",
    )
    rate_limit: int = setting(
        20, "WORKBENCH_RATE_LIMIT", whole(0, 100_000), "replies a visitor may ask for per minute (0: no limit)"
    )
    vote_limit: int = setting(
        120, "WORKBENCH_VOTE_LIMIT", whole(0, 1_000_000), "votes a visitor may cast per hour (0: no limit)"
    )
    queue_size: int = setting(
        64,
        "WORKBENCH_QUEUE_SIZE",
        whole(1, 100_000),
        "requests waiting in the app's queue before new ones are turned away",
    )
    visitor_max_new_tokens: int = setting(
        1024, "WORKBENCH_VISITOR_MAX_NEW_TOKENS", whole(0, 1 << 20), "the most new tokens a visitor may ask for"
    )
    space: bool = setting(
        False,
        "SPACE_ID",
        lambda label, value: bool(value) if isinstance(value, bool) else bool(str(value).strip()),
        "set by Hugging Face Spaces: the store goes to /data when the Space has it, and the app warns when votes "
        "would not survive a restart",
        documented="unset",
        child=False,
    )
    # --- a public server (workbench/access.py, workbench/ui/guard.py, workbench/gate/) ---
    share: bool = setting(
        False,
        "GRADIO_SHARE",
        flag,
        "1 shares the app through a Gradio share link: no request is then this machine's own (admin needs the token)",
    )
    allowed_hosts: tuple[str, ...] = setting(
        (),
        "WORKBENCH_ALLOWED_HOSTS",
        host_list,
        "Host names the app answers to besides loopback, the address it listens on and the Space's own host "
        "(comma-separated, *.domain allowed; * for any); a DNS-rebinding page's name is refused",
        documented="none (any host when listening on all interfaces)",
    )
    space_host: str | None = setting(
        None, "SPACE_HOST", text, "set by Hugging Face Spaces: the Space's host name", documented="unset", child=False
    )
    visitor_requests: int = setting(
        2,
        "WORKBENCH_VISITOR_REQUESTS",
        whole(1, 1000),
        "generations one visitor may have waiting or running at once (their share of the queue)",
    )
    visitor_events: int = setting(
        12,
        "WORKBENCH_VISITOR_EVENTS",
        whole(1, 100_000),
        "actions of any kind one visitor may have waiting or running at once (a page opening sends about eight); "
        "must be below WORKBENCH_QUEUE_SIZE, so no address can fill the queue",
    )
    visitor_checkpoints: tuple[str, ...] = setting(
        ("base", "adapters"),
        "WORKBENCH_VISITOR_CHECKPOINTS",
        kinds("base", "adapters", "remote"),
        "what a visitor may choose: base, adapters (loading a new one only while llama.cpp has room), remote "
        "(remote models, which may cost money)",
    )
    visitor_edits: bool = setting(
        False,
        "WORKBENCH_VISITOR_EDITS",
        flag,
        "1 lets visitors edit the model's replies in the chat, each edit kept as a correction for training (the "
        "owner always may); off, only the owner may",
    )
    upload_mb: int = setting(
        100, "WORKBENCH_UPLOAD_MB", whole(0, 1_000_000), "megabytes one admin address may upload per hour (0: none)"
    )
    upload_total_mb: int = setting(
        1000,
        "WORKBENCH_UPLOAD_TOTAL_MB",
        whole(0, 1_000_000),
        "megabytes of uploads the app keeps at once (Gradio deletes them after one to two hours)",
    )
    # --- Arena pairs and the stopping rule (issue 20: workbench/ratings/sampler.py, settle.py, pairs.py) ---
    pairs: str = setting(
        "adaptive",
        "WORKBENCH_PAIRS",
        choice(*PAIR_MODES),
        "how the Arena and the Rate page choose pairs: adaptive (where a vote most narrows the leaderboard's open "
        "intervals; nothing once the ranking is settled) or uniform (every pair alike, never stopping)",
    )
    settle_half_width: int = setting(
        0,
        "WORKBENCH_SETTLE_HALF_WIDTH",
        whole(0, 1000),
        "rating points: neighbours whose 95% intervals are both narrower than +-this count as settled even when "
        "they overlap (a near-tie measured well enough); 0: only separated neighbours count",
    )
    # --- the open Arena and votes that survive a restart (issue 21) ---
    arena_max_new_tokens: int = setting(
        256, "WORKBENCH_ARENA_MAX_NEW_TOKENS", whole(1, 8192), "the most tokens each answer of an Arena battle has"
    )
    sync_dataset: str | None = setting(
        None,
        "WORKBENCH_SYNC_DATASET",
        dataset_id,
        "a Hugging Face dataset (user/name): the store's votes, generations and feedback are pushed to it as JSONL "
        "and read back at start (needs HF_TOKEN)",
    )
    sync_every: float = setting(
        300.0, "WORKBENCH_SYNC_EVERY", seconds(30, 86_400), "seconds between pushes to WORKBENCH_SYNC_DATASET"
    )
    hf_token: str | None = setting(
        None, "HF_TOKEN", text, "a Hugging Face token that may write WORKBENCH_SYNC_DATASET", child=False
    )
    # --- arena integrity, voter ids across restarts, the sync dataset (issue 27) ---
    rater_cap: int = setting(
        10,
        "WORKBENCH_RATER_CAP",
        whole(0, 100_000),
        "the most votes one visitor (an anonymous voter id or a Hugging Face login) counts for on one pair of "
        "contestants in the leaderboard's fit: more are down-weighted to this many (docs/arena.md); names the "
        "owner typed and LLM judges are not capped; 0: no cap",
    )
    judge_visitor_prompts: bool = setting(
        False,
        "WORKBENCH_JUDGE_VISITOR_PROMPTS",
        flag,
        "1 lets `workbench judge` judge pairs on prompts visitors typed (the Arena's battles, chats, prompts waiting "
        "for approval); off, their text never reaches the judge (prompt injection, paid calls to a remote judge)",
    )
    voter_key: str | None = setting(
        None,
        "WORKBENCH_VOTER_KEY",
        key_text,
        "the key anonymous voter ids are made with (at least 32 characters; a Space secret): the same ids after a "
        "restart; unset: a key file beside the store, made on first use",
        child=False,
    )
    sync_public: bool = setting(
        False,
        "WORKBENCH_SYNC_PUBLIC",
        flag,
        "1 allows WORKBENCH_SYNC_DATASET to be a public dataset (everyone could read the votes, prompts and liked "
        "chats); off, sync to a public dataset is refused",
    )
    # --- the OpenAI-compatible API (issue 28: workbench/api/, docs/api.md) ---
    api_open: bool = setting(
        False,
        "WORKBENCH_API_OPEN",
        flag,
        "1 lets visitors of a public app call its /v1 API (within their reply limits and checkpoints); the owner, "
        "on this machine or with a key, may always",
    )
    api_keys: tuple[str, ...] = setting(
        (),
        "WORKBENCH_API_KEYS",
        secrets_list,
        "bearer keys (comma-separated, 16+ characters each) that give their holder the owner's rights on the /v1 API",
        documented="unset",
        child=False,
    )
    api_store: bool = setting(
        False,
        "WORKBENCH_API_STORE",
        flag,
        "1 keeps every owner's /v1 generation in the store (checkpoint, settings, stats); else a request asks with "
        "the header X-Workbench-Store: 1",
    )
    # --- serving (issue 18) ---
    threads: int = setting(
        0,
        "WORKBENCH_THREADS",
        whole(0, 512),
        "llama.cpp's compute threads of each served family (0: one family, llama.cpp's own choice, one per physical "
        "core, at most the CPU quota; several, the cores divided evenly among them: docs/models.md)",
    )
    # --- several base models at once (issue 30; docs/models.md) ---
    model_memory_mb: int = setting(
        0,
        "WORKBENCH_MODEL_MEMORY_MB",
        whole(0, 1 << 24),
        "memory the served base models may hold together, in MB; a family that would not fit is refused (0: auto, "
        "three quarters of the machine's memory)",
    )
    preload: str = setting(
        "auto",
        "WORKBENCH_PRELOAD",
        choice("auto", "all", "main"),
        "which base models load when the app starts: all, the main one only (others on first use), or auto (all "
        "when they fit half the model memory, else the main one)",
    )
    idle_unload: float = setting(
        900.0,
        "WORKBENCH_IDLE_UNLOAD",
        seconds(0, 7 * 86400),
        "seconds after its last request that a base model other than the main one is unloaded (0: never)",
    )

    def __post_init__(self) -> None:
        for f, spec in _specs():
            value = getattr(self, f.name)
            if value is not None:
                object.__setattr__(self, f.name, spec.parse(label_of(f.name, spec.env), value))
        home = self.home or REPO_ROOT
        object.__setattr__(self, "home", home)
        models = self.models_dir or home / "models"
        object.__setattr__(self, "models_dir", models)
        object.__setattr__(self, "adapters_dir", self.adapters_dir or models / "adapters")
        if not self.slots:
            object.__setattr__(self, "slots", auto_slots())
        if self.visitor_events >= self.queue_size:
            raise WorkbenchError(
                f"WORKBENCH_VISITOR_EVENTS ({self.visitor_events}) must be below WORKBENCH_QUEUE_SIZE "
                f"({self.queue_size}), or one visitor could fill the queue."
            )
        if not self.db_url:
            # A Space keeps only /data across restarts; the repository folder is rebuilt on each one.
            store = SPACE_DATA / "workbench" if self.space and SPACE_DATA.is_dir() else home / "var"
            object.__setattr__(self, "db_url", f"sqlite:///{store / 'workbench.db'}")

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
    def access(self) -> Policy:
        """Who may take admin actions (see `workbench.access`): the token, and without one, callers that really are
        this machine (auto, when the app listens on loopback and is not shared), everyone (1) or no one (0)."""
        if self.admin_open == "1":
            return Policy(self.admin_token, "all")
        local = self.admin_open == "auto" and is_loopback(self.host) and not self.share
        return Policy(self.admin_token, "local" if local else "none")

    @property
    def admin_without_token(self) -> bool:
        """Whether some callers may take admin actions without a token when none is set (this machine's own, or
        everyone); a request decides with `access.open_for(caller)`."""
        return self.access.open_to != "none"

    def is_owner(self, who: Caller) -> bool:
        """Whether `who` is the app's owner: admin actions open to them without a token, so the owner's sizes, no
        rate limits and typed rater names apply."""
        return self.access.open_for(who)

    @property
    def answers_to(self) -> tuple[str, ...]:
        """The Host names the app answers to (the DNS-rebinding allowlist of `workbench.ui.guard`)."""
        if self.share or "*" in self.allowed_hosts:
            return ("*",)
        if self.host in ("0.0.0.0", "::", "[::]") and not self.allowed_hosts and not self.space_host:
            return ("*",)  # listening everywhere with no name given: any name may reach it, none gets admin
        names = ("localhost", "*.localhost", "127.0.0.1", "::1", self.host.strip("[]").lower())
        return tuple(
            dict.fromkeys((*names, *self.allowed_hosts, *((self.space_host.lower(),) if self.space_host else ())))
        )

    @property
    def secrets_dir(self) -> Path:
        """Where the store's own secrets live (the voter-id key): beside a SQLite store, else in var/."""
        url = str(self.db_url)
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            return Path(url.removeprefix("sqlite:///")).parent
        return self.var_dir

    def voter_secret(self) -> bytes:
        """The key anonymous voter ids are made with (`workbench.access.voter_secret`): WORKBENCH_VOTER_KEY when
        set, else the key file in `secrets_dir`."""
        return voter_secret(self.secrets_dir, self.voter_key)

    @property
    def voter_ids_survive_restart(self) -> bool:
        """False on a Space whose voter-id key file is outside its persistent /data and no WORKBENCH_VOTER_KEY is
        set: after a restart every anonymous visitor has a new id (and a new ballot on every pair)."""
        if self.voter_key or not self.space:
            return True
        return str(self.secrets_dir).startswith(str(SPACE_DATA) + "/")

    @property
    def store_survives_restart(self) -> bool:
        """False on a Space whose SQLite store is outside its persistent /data (votes vanish on restart)."""
        if not self.space or not str(self.db_url).startswith("sqlite"):
            return True
        return str(self.db_url).removeprefix("sqlite:///").startswith(str(SPACE_DATA) + "/")

    @property
    def sync_dir(self) -> Path:
        """Folder the store's rows are written to for WORKBENCH_SYNC_DATASET (outbox/) and read back from
        (restored/)."""
        return self.var_dir / "sync"

    def check_admin(self, token: str | None, who: Caller = SHELL) -> None:
        """Raise WorkbenchError unless `who` may take an admin action with `token` (see `workbench.access`)."""
        self.access.check(token, who)

    def admin_allowed(self, token: str | None, who: Caller = SHELL) -> bool:
        """Whether `token` (or none) unlocks admin actions for `who`, through the same throttle: for what a page
        shows."""
        return self.access.allowed(token, who)

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables for a child process (`from_env` reads them back). The admin
        token is left out: a child that needs it is given it on purpose."""
        env = {}
        for f, spec in _specs():
            value = getattr(self, f.name)
            if spec.child and value is not None:
                env[spec.env] = _env_text(value)
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from environment variables; keyword arguments win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {f.name: env[spec.env] for f, spec in _specs() if env.get(spec.env, "").strip()}
        if values.get("space"):
            values.setdefault("trusted_proxies", 1)  # the Space's own proxy
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def _specs() -> list[tuple[Any, Spec]]:
    return [(f, f.metadata["spec"]) for f in fields(Settings) if "spec" in f.metadata]


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def reference() -> list[dict[str, str]]:
    """Every setting as {variable, default, help}, in declaration order: the table of docs/reference.md."""
    rows = []
    for f, spec in _specs():
        default = spec.default or ("unset" if f.default is None else _env_text(f.default))
        rows.append({"variable": spec.env, "default": default, "help": spec.help})
    return rows
