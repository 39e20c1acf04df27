"""Plain records the store hands out (generations, rating items, progress) and the checks on what comes in.

The records are frozen dataclasses so UIs can keep them in session state; `PairItem` carries everything a
blind pairwise screen needs: both outputs, which one goes left (chosen at random when the item was served),
and the idempotency key to send back with the vote.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings, check_messages

RATER_MAX = 64
_RATER = re.compile(r"^\w[\w .@-]*$")
JUDGE_PREFIX = "judge:"  # an LLM judge's rater name is this plus the model's name; a person's never has ":"
_JUDGE = re.compile(r"^judge:\w[\w .@/:+-]*$")
RATER_KINDS = ("humans", "judges", "all")  # whose votes count: people, LLM judges, or both
_KEY = re.compile(r"^[A-Za-z0-9_.:-]{8,64}$")
CHOICES = {"left": None, "right": None, "tie": "tie", "bothbad": "bothbad"}
BACKEND_MAX = 32


@dataclass(frozen=True)
class GenerationRecord:
    """A stored generation, as the UIs show it.

    `backend` is what generated it ("transformers", "llamacpp"), or None when unknown. The blind rating
    screens never show it.
    """

    id: int
    uid: str
    checkpoint: str
    prompt: str
    messages: list[dict[str, str]]
    system_prompt: str | None
    settings: dict[str, Any]
    output: str
    seed: int | None = None
    prompt_tokens: int | None = None
    new_tokens: int | None = None
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    total_s: float | None = None
    finish_reason: str | None = None
    prompt_id: int | None = None
    created_at: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    backend: str | None = None


@dataclass(frozen=True)
class PairItem:
    """Two outputs for the same prompt from different checkpoints, to be judged blind.

    `a` and `b` are the generations (a has the lower id); `shown_left` ("a" or "b") is the one to show on the
    left. Send `key` with the vote so a double click or a reload records it once.
    """

    a: GenerationRecord
    b: GenerationRecord
    shown_left: str
    key: str

    @property
    def left(self) -> GenerationRecord:
        """The generation to show on the left."""
        return self.a if self.shown_left == "a" else self.b

    @property
    def right(self) -> GenerationRecord:
        """The generation to show on the right."""
        return self.b if self.shown_left == "a" else self.a

    @property
    def messages(self) -> list[dict[str, str]]:
        """The conversation both outputs answer."""
        return self.a.messages

    def winner_for(self, choice: str) -> str:
        """The stored winner ("a", "b", "tie", "bothbad") for a button: "left", "right", "tie" or "bothbad"."""
        if choice not in CHOICES:
            raise WorkbenchError(f"A vote must be one of {', '.join(CHOICES)}, not {choice!r}.")
        if choice == "left":
            return self.shown_left
        if choice == "right":
            return "b" if self.shown_left == "a" else "a"
        return CHOICES[choice]


@dataclass(frozen=True)
class LikertItem:
    """One output to score from 1 to 5; send `key` with the score."""

    generation: GenerationRecord
    key: str


@dataclass(frozen=True)
class Progress:
    """How far one rater has got: what they did and what is left for them."""

    rater: str
    votes: int
    likert: int
    pairs_left: int
    likert_left: int

    @property
    def done(self) -> int:
        """Ratings given, pairwise and Likert together."""
        return self.votes + self.likert


def check_rater(name: str | None) -> str:
    """A valid rater name, stripped: 1 to 64 letters, digits, spaces or . _ - @, starting with a letter or digit."""
    clean = name.strip() if isinstance(name, str) else ""
    if not clean or len(clean) > RATER_MAX or not _RATER.match(clean):
        raise WorkbenchError(
            f"A rater name must be 1 to {RATER_MAX} letters, digits, spaces or . _ - @,"
            " starting with a letter or digit."
        )
    return clean


def judge_rater(model: str) -> str:
    """The rater name of an LLM judge: "judge:" and the model's name (letters, digits, spaces, . _ - @ / : +).

    People cannot take such a name: `check_rater`, which every rating screen applies to a typed name, refuses
    ":". The store accepts it from the owner's own tools (the judge command, an import of exported votes).

    Raises:
        WorkbenchError: An empty model name, other characters, or a name past 64 characters in all.
    """
    clean = model.strip() if isinstance(model, str) else ""
    if clean.startswith(JUDGE_PREFIX):
        clean = clean[len(JUDGE_PREFIX) :]
    name = JUDGE_PREFIX + clean
    if not clean or len(name) > RATER_MAX or not _JUDGE.match(name):
        raise WorkbenchError(
            f"A judge's name must be 1 to {RATER_MAX - len(JUDGE_PREFIX)} letters, digits, spaces or . _ - @ / : +,"
            f" starting with a letter or digit, not {model!r}."
        )
    return name


def is_judge(rater: Any) -> bool:
    """True for an LLM judge's rater name ("judge:..."), False for a person's."""
    return isinstance(rater, str) and rater.startswith(JUDGE_PREFIX)


def is_visitor(rater: Any) -> bool:
    """True for a rater name a visitor gets rather than types: anonymous ("anon-<voter id>") or a Hugging Face
    login ("<user>@hf"). Typed names are the owner's (only the owner may type one) and judges are the owner's runs."""
    return isinstance(rater, str) and (rater.startswith("anon-") or rater.endswith("@hf"))


def check_rater_kind(kind: str | None) -> str:
    """Whose votes count: "humans", "judges" or "all" (None means "humans"); one sentence for anything else."""
    kind = "humans" if kind is None else kind
    if kind not in RATER_KINDS:
        raise WorkbenchError(f"Count the votes of {', '.join(RATER_KINDS)}, not {kind!r}.")
    return kind


def anonymous_rater(session: str) -> str:
    """The rater name used for a rater who stays anonymous: derived from their session id."""
    return check_rater(f"anon-{check_session(session)[:16]}")


def check_session(session: str | None) -> str | None:
    """A valid session id (8 to 64 letters, digits, . _ : -) or None."""
    if session is None or session == "":
        return None
    if not isinstance(session, str) or not _KEY.match(session):
        raise WorkbenchError("A session id must be 8 to 64 letters, digits or . _ : - characters.")
    return session


def check_key(key: str | None) -> str | None:
    """A valid idempotency key (8 to 64 letters, digits, . _ : -) or None."""
    if key is None or key == "":
        return None
    if not isinstance(key, str) or not _KEY.match(key):
        raise WorkbenchError("An idempotency key must be 8 to 64 letters, digits or . _ : - characters.")
    return key


def check_backend(backend: str | None) -> str | None:
    """The name of the backend that made a generation, stripped, or None when unknown (None or "").

    Raises:
        WorkbenchError: When it is not text or longer than 32 characters.
    """
    if backend is None:
        return None
    if not isinstance(backend, str) or len(backend.strip()) > BACKEND_MAX:
        raise WorkbenchError(f"A backend name must be text of at most {BACKEND_MAX} characters, not {backend!r}.")
    return backend.strip() or None


def check_name(kind: str, name: str | None, limit: int = 200) -> str:
    """A non-empty name of at most `limit` characters (checkpoints, suites, runs, prompt sets)."""
    clean = name.strip() if isinstance(name, str) else ""
    if not clean or len(clean) > limit:
        raise WorkbenchError(f"A {kind} name must be 1 to {limit} characters, not {name!r}.")
    return clean


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no spaces: the text whose hash identifies a prompt or a set of settings."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def digest(data: Any) -> str:
    """SHA-256 hex of the canonical JSON of `data`."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def normalize_settings(settings: GenerationSettings | Mapping[str, Any] | None) -> dict[str, Any]:
    """Generation settings as a validated, JSON-ready dict (defaults filled in). Min-p is kept only when it is on,
    and the adapter strength only when it is not 1 (as trained), so settings stored before either existed keep
    their hash (and their generations are found again)."""
    if settings is None:
        settings = GenerationSettings()
    elif not isinstance(settings, (GenerationSettings, Mapping)):
        raise WorkbenchError("Generation settings must be a GenerationSettings or a mapping of its fields.")
    data = (settings if isinstance(settings, GenerationSettings) else GenerationSettings.from_dict(settings)).to_dict()
    if not data["min_p"]:
        del data["min_p"]
    if data["adapter_strength"] == 1:
        del data["adapter_strength"]
    return data


def settings_label(settings: Mapping[str, Any] | None) -> str:
    """A short, stable label of generation settings for tables and filters, e.g.
    "temp 0.7 · top-p 0.95 · top-k 50 · max 256 · rep 1 · seed 11"."""
    s = normalize_settings(settings)
    parts = [
        f"temp {s['temperature']:g}",
        f"top-p {s['top_p']:g}",
        f"top-k {s['top_k']}",
        *([f"min-p {s['min_p']:g}"] if s.get("min_p") else []),
        *([f"strength {s['adapter_strength']:g}"] if "adapter_strength" in s else []),
        f"max {s['max_new_tokens']}",
        f"rep {s['repetition_penalty']:g}",
        f"seed {s['seed'] if s['seed'] is not None else 'random'}",
    ]
    if s["stop"]:
        parts.append("stop " + ", ".join(repr(x) for x in s["stop"]))
    return " · ".join(parts)


def normalize_prompt(
    prompt: str | Sequence[Mapping[str, Any]], system_prompt: str | None = None
) -> tuple[str, list[dict[str, str]], str | None]:
    """The prompt as (last user text, full messages with the system prompt first, system prompt).

    A plain string becomes one user message; a conversation is validated. A system message inside the
    conversation wins over `system_prompt`.
    """
    if isinstance(prompt, str):
        if not prompt.strip():
            raise WorkbenchError("The prompt is empty.")
        messages = [{"role": "user", "content": prompt}]
    else:
        messages = check_messages(prompt)
    system = system_prompt.strip() if isinstance(system_prompt, str) and system_prompt.strip() else None
    if messages[0]["role"] == "system":
        system = messages[0]["content"]
    elif system:
        messages = [{"role": "system", "content": system}, *messages]
    return messages[-1]["content"], messages, system
