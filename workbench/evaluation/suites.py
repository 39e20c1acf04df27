"""Evaluation suites: one small YAML file each in `evals/`, with their data under `evals/data/`.

A suite names a kind, a data file and, for generation suites, the generation settings and metrics.
Adding a suite is adding one file; `Suite` checks itself when built, so a broken spec fails on load.

    # evals/shakespeare.yaml
    name: shakespeare
    kind: perplexity               # perplexity | response_perplexity | generation
    description: Perplexity of a fixed slice of Shakespeare.
    data: data/tinyshakespeare/shakespeare_head.txt   # relative to the spec file
    window: 512                    # tokens per window (perplexity)
    stride: null                   # null: non-overlapping windows; N: sliding window with stride N
    batch_size: 8

    # a generation suite
    kind: generation
    data: data/self_instruct/user_oriented_instructions.jsonl
    metrics: [bleu, chrf]          # and response_perplexity (of the references, given the prompt)
    generation: {temperature: 0, seed: 0, max_new_tokens: 128}   # greedy by default
    limit: 16                      # first N examples; `eval --limit 0` runs them all

Example data (JSONL, one object per line, the form detected per line):
- chat: `{"messages": [...]}` (the fine-tuning format). Each assistant turn is a reference for the
  conversation before it; `responses: last` (default) keeps the last assistant turn, `all` every turn.
- prompt/references: `{"prompt": "text" or [messages], "references": ["...", ...]}` (or `"reference"`).
- self-instruct: `{"instruction", "instances": [{"input", "output"}]}`, one example per instance.
- Alpaca `{"instruction", "input", "output"}` and pairs `{"input", "output"}` (optional `"system"`).
An instruction with an input becomes one user message: the instruction, a blank line, the input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.config import REPO_ROOT
from workbench.errors import WorkbenchError
from workbench.evaluation.metrics.overlap import METRICS as OVERLAP_METRICS
from workbench.evaluation.metrics.textfiles import read_text
from workbench.generation.settings import GenerationSettings, Message, check_messages

EVALS_DIR = REPO_ROOT / "evals"
KINDS = ("perplexity", "response_perplexity", "generation")
GENERATION_METRICS = (*OVERLAP_METRICS, "response_perplexity")
DEFAULT_GENERATION = {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "max_new_tokens": 128, "seed": 0}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_FIELDS = {
    "name",
    "kind",
    "description",
    "data",
    "window",
    "stride",
    "batch_size",
    "limit",
    "responses",
    "metrics",
    "generation",
}


@dataclass(frozen=True)
class Example:
    """One prompt with its reference replies.

    Attributes:
        id: Stable id from the data (or its line number), unique within the suite.
        prompt: The conversation to answer, ending with the user's message.
        references: One or more reference replies.
    """

    id: str
    prompt: list[Message]
    references: list[str]


@dataclass(frozen=True)
class Suite:
    """An evaluation suite, as read from its spec file. Validates itself on construction.

    Attributes:
        name: Unique name (lower case, digits, `_` or `-`); what `eval --suite` takes.
        kind: "perplexity" (plain text), "response_perplexity" (reference replies given their prompts) or
            "generation" (generate replies and score them against the references).
        data: The data file (a path relative to the spec file's folder is resolved against it).
        description: One or two sentences for people.
        window: Tokens per window for text perplexity.
        stride: None for non-overlapping windows, else the sliding-window stride (1..window).
        batch_size: Windows or examples per forward pass (never changes a number).
        limit: Use only the first N examples (None: all). Not for text perplexity.
        responses: For chat data: "last" assistant turn per conversation, or "all" of them.
        metrics: Generation suites: any of bleu, chrf, response_perplexity.
        generation: Generation settings (greedy, seed 0 and 128 new tokens unless the spec says otherwise).
        spec: The spec file it came from.
    """

    name: str
    kind: str
    data: Path
    description: str = ""
    window: int = 512
    stride: int | None = None
    batch_size: int = 8
    limit: int | None = None
    responses: str = "last"
    metrics: tuple[str, ...] = ()
    generation: GenerationSettings = field(default_factory=lambda: GenerationSettings(**DEFAULT_GENERATION))
    spec: Path | None = None

    def __post_init__(self) -> None:
        where = f"Suite {self.name!r}" + (f" ({self.spec})" if self.spec else "")
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise WorkbenchError(f"{where}: the name must be lower-case letters, digits, '_' or '-'.")
        if self.kind not in KINDS:
            raise WorkbenchError(f"{where}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}.")
        object.__setattr__(self, "data", Path(self.data))
        if not self.data.is_file():
            raise WorkbenchError(f"{where}: the data file {self.data} does not exist.")
        for key, low in (("window", 2), ("batch_size", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise WorkbenchError(f"{where}: {key} must be a whole number of at least {low}, not {value!r}.")
        if self.stride is not None and (
            isinstance(self.stride, bool) or not isinstance(self.stride, int) or not 1 <= self.stride <= self.window
        ):
            raise WorkbenchError(f"{where}: stride must be empty or between 1 and the window, not {self.stride!r}.")
        if self.limit is not None:
            if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
                raise WorkbenchError(f"{where}: limit must be a whole number of at least 1, not {self.limit!r}.")
            if self.kind == "perplexity":
                raise WorkbenchError(f"{where}: limit is for example suites; ship a slice of the text instead.")
        if self.responses not in ("last", "all"):
            raise WorkbenchError(f"{where}: responses must be 'last' or 'all', not {self.responses!r}.")
        self._check_metrics(where)
        if isinstance(self.generation, Mapping):
            object.__setattr__(self, "generation", GenerationSettings.from_dict(self.generation))
        if self.generation.seed is None:
            raise WorkbenchError(f"{where}: generation needs a fixed seed, so the same run gives the same numbers.")

    def _check_metrics(self, where: str) -> None:
        metrics = tuple(str(m).lower() for m in (self.metrics or ()))
        if self.kind == "generation":
            unknown = [m for m in metrics if m not in GENERATION_METRICS]
            if unknown or not metrics:
                raise WorkbenchError(
                    f"{where}: a generation suite needs metrics from {', '.join(GENERATION_METRICS)}"
                    + (f", not {', '.join(unknown)}." if unknown else ".")
                )
        elif metrics:
            raise WorkbenchError(f"{where}: only generation suites list metrics; a {self.kind} suite has its own.")
        object.__setattr__(self, "metrics", tuple(dict.fromkeys(metrics)))

    @classmethod
    def from_file(cls, path: str | Path) -> Suite:
        """Read and validate one spec file."""
        import yaml

        path = Path(path)
        try:
            spec = yaml.safe_load(read_text(path))
        except yaml.YAMLError as exc:
            raise WorkbenchError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(spec, dict):
            raise WorkbenchError(f"{path} must be a mapping of suite fields.")
        unknown = sorted(set(spec) - _FIELDS)
        if unknown:
            raise WorkbenchError(f"{path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}.")
        for key in ("name", "kind", "data"):
            if not spec.get(key):
                raise WorkbenchError(f"{path}: the field {key!r} is required.")
        generation = spec.pop("generation", None) or {}
        if not isinstance(generation, dict):
            raise WorkbenchError(f"{path}: generation must be a mapping of generation settings.")
        try:
            settings = GenerationSettings.from_dict({**DEFAULT_GENERATION, **generation})
        except WorkbenchError as exc:
            raise WorkbenchError(f"{path}: {exc}") from None
        data = (path.parent / str(spec.pop("data"))).resolve()
        metrics = tuple(spec.pop("metrics", None) or ())
        return cls(data=data, metrics=metrics, generation=settings, spec=path.resolve(), **spec)

    def load_examples(self, limit: int | None = None) -> list[Example]:
        """The suite's examples, in file order, cut to `limit` (else the suite's own limit; 0 means all)."""
        if self.kind == "perplexity":
            raise WorkbenchError(f"Suite {self.name!r} scores plain text; it has no examples.")
        examples = read_examples(self.data, self.responses)
        cut = self.limit if limit is None else (limit or None)
        return examples[:cut] if cut else examples

    def load_text(self) -> str:
        """The text of a perplexity suite."""
        if self.kind != "perplexity":
            raise WorkbenchError(f"Suite {self.name!r} is a {self.kind} suite; it has examples, not a text.")
        return read_text(self.data)


def list_suites(root: str | Path = EVALS_DIR) -> list[Suite]:
    """Every suite spec (`*.yaml`, `*.yml`) in `root`, by name; names must be unique."""
    root = Path(root)
    suites: dict[str, Suite] = {}
    for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        suite = Suite.from_file(path)
        if suite.name in suites:
            raise WorkbenchError(f"Two suites are called {suite.name!r}: {suites[suite.name].spec} and {path}.")
        suites[suite.name] = suite
    return sorted(suites.values(), key=lambda s: s.name)


def find_suite(name: str, root: str | Path = EVALS_DIR) -> Suite:
    """The suite called `name` (or the spec file at that path)."""
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return Suite.from_file(name)
    suites = list_suites(root)
    for suite in suites:
        if suite.name == name:
            return suite
    known = ", ".join(s.name for s in suites) or "none"
    raise WorkbenchError(f"There is no suite called {name!r}; the suites are: {known}.")


def _user_text(instruction: Any, extra: Any) -> str:
    instruction = str(instruction or "").strip()
    extra = str(extra or "").strip()
    return f"{instruction}\n\n{extra}" if extra else instruction


def _examples_from_row(row: dict[str, Any], key: str, responses: str) -> list[Example]:
    """The examples in one data row, whatever its form (see the module docstring)."""
    system = [{"role": "system", "content": row["system"]}] if isinstance(row.get("system"), str) else []
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise WorkbenchError("messages must be a list of {role, content} objects")
        turns = [i for i, m in enumerate(messages) if m.get("role") == "assistant" and i > 0]
        if not turns:
            raise WorkbenchError("the conversation has no assistant reply after a user message")
        picked = turns if responses == "all" else turns[-1:]
        many = len(picked) > 1
        return [
            Example(f"{key}#{n}" if many else key, check_messages(messages[:i]), [str(messages[i].get("content"))])
            for n, i in enumerate(picked, start=1)
        ]
    if "prompt" in row:
        prompt = row["prompt"]
        messages = [*system, {"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        refs = row.get("references", row.get("reference"))
        refs = [refs] if isinstance(refs, str) else refs
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
            raise WorkbenchError("references must be a non-empty list of strings (or reference one string)")
        return [Example(key, check_messages(messages), list(refs))]
    if "instances" in row:
        return [
            Example(
                f"{key}#{n}" if len(row["instances"]) > 1 else key,
                check_messages(
                    [*system, {"role": "user", "content": _user_text(row.get("instruction"), inst.get("input"))}]
                ),
                [str(inst.get("output", ""))],
            )
            for n, inst in enumerate(row["instances"], start=1)
        ]
    if "output" in row and ("instruction" in row or "input" in row):
        text = _user_text(row.get("instruction"), row.get("input")) if "instruction" in row else str(row["input"])
        return [Example(key, check_messages([*system, {"role": "user", "content": text}]), [str(row["output"])])]
    raise WorkbenchError("expected messages, prompt/references, instruction/instances or input/output fields")


def read_examples(path: str | Path, responses: str = "last") -> list[Example]:
    """Examples from a JSONL data file; WorkbenchError naming the line for a bad one."""
    path = Path(path)
    examples: list[Example] = []
    seen: set[str] = set()
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise WorkbenchError("each line must be a JSON object")
            key = str(row.get("id") or row.get("tree_id") or f"line{number}")
            found = _examples_from_row(row, key, responses)
        except json.JSONDecodeError as exc:
            raise WorkbenchError(f"{path}, line {number}: not valid JSON ({exc.msg}).") from None
        except WorkbenchError as exc:
            raise WorkbenchError(f"{path}, line {number}: {str(exc).rstrip('.')}.") from None
        for example in found:
            if example.id in seen:
                raise WorkbenchError(f"{path}, line {number}: the id {example.id!r} is used twice.")
            seen.add(example.id)
        examples.extend(found)
    if not examples:
        raise WorkbenchError(f"{path} has no examples.")
    return examples
