"""Dataset files for fine-tuning -> validated conversations, with every problem reported by line number.

Accepted files: JSONL (one object per line), JSON (a list of objects) and CSV (a header row), each in
one of three shapes, detected per file:
    pairs   {"input": ..., "output": ..., "system": ...optional}
    chat    {"messages": [{"role": "system"|"user"|"assistant", "content": ...}, ...]}  (OpenAI form, multi-turn;
            in a CSV the "messages" cell holds that list as JSON)
    alpaca  {"instruction": ..., "input": ...optional, "output": ...}

Usage:
    report = read_dataset("train.jsonl", tokenizer=tok, max_length=512)
    print(report.summary())          # shape, kept/dropped with reasons, then one line per problem
    report.require_usable()          # WorkbenchError when no example is usable
    train, val = split_examples(report.examples, fraction=0.1, seed=42)

Every record becomes a conversation (a tuple of {"role", "content"} messages ending with the assistant),
or a `Problem` with its line number; nothing is dropped without one.

The records are read with the standard json and csv modules rather than `datasets.load_dataset`: the
Arrow readers behind it stop at the first bad line without naming it, and they unify the records'
schema (a missing key comes back as None, an extra key appears in every row), which would hide the very
problems this module must report line by line. `datasets` does the seeded train/validation split and
feeds the trainer (see `split_examples` and `workbench.training`).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.evaluation.fingerprints import file_sha256

SHAPES = ("pairs", "chat", "alpaca")
ROLES = ("system", "user", "assistant")
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}
# Problem kinds, in the order a summary lists them.
KINDS = {
    "bad-json": "not valid JSON",
    "not-object": "not an object",
    "missing-field": "a required field is missing",
    "wrong-type": "a field has the wrong type",
    "wrong-role": "a message has a role other than system/user/assistant",
    "empty-content": "empty content",
    "last-not-assistant": "the last turn is not from the assistant",
    "too-long": "longer than the maximum length",
}
# Kinds only a preference file (preferences.py) can have; a report counts and names both sets.
PAIR_KINDS = {
    "different-prompts": "chosen and rejected answer different prompts",
    "same-replies": "chosen and rejected are the same",
}
_ALL_KINDS = KINDS | PAIR_KINDS

Message = dict[str, str]


@dataclass(frozen=True)
class Problem:
    """Why one record of a file cannot be used.

    Attributes:
        line: 1-based line number where the record starts in the file.
        kind: One of KINDS.
        reason: One sentence for a person.
    """

    line: int
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class Example:
    """One usable conversation.

    Attributes:
        line: Line where its record starts in the source file.
        messages: The conversation; the last message is from the assistant.
        tokens: Its length in tokens with the model's chat template, when a tokenizer was given.
    """

    line: int
    messages: tuple[Message, ...]
    tokens: int | None = None


@dataclass
class DatasetReport:
    """The outcome of reading and validating one dataset file.

    Attributes:
        path: The file.
        format: "jsonl", "json" or "csv".
        shape: "pairs", "chat" or "alpaca" (None when no record showed a recognisable shape).
        sha256: Hex digest of the file's bytes.
        records: How many records (non-blank lines, list items or CSV rows) were read.
        examples: The usable conversations.
        problems: One entry per record that was dropped.
        max_length: The token limit examples were checked against (None: not checked).
    """

    path: Path
    format: str
    shape: str | None
    sha256: str
    records: int = 0
    examples: list[Example] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    max_length: int | None = None

    @property
    def kept(self) -> int:
        return len(self.examples)

    @property
    def dropped(self) -> int:
        return len(self.problems)

    def dropped_by_kind(self) -> dict[str, int]:
        """How many records were dropped for each kind of problem, in KINDS (then PAIR_KINDS) order."""
        counts = Counter(p.kind for p in self.problems)
        return {k: counts[k] for k in _ALL_KINDS if counts[k]}

    def headline(self) -> str:
        """One line: file, shape, kept and dropped with reasons."""
        shape = f"{self.shape} shape" if self.shape else "unknown shape"
        line = f"{self.path.name}: {shape} ({self.format.upper()}), {self.records} records, {self.kept} kept"
        if self.problems:
            reasons = ", ".join(f"{n} {_ALL_KINDS[k]}" for k, n in self.dropped_by_kind().items())
            line += f", {self.dropped} dropped ({reasons})"
        return line + "."

    def summary(self) -> str:
        """The headline, then one line per problem with its line number."""
        return "\n".join([self.headline(), *(f"  {p}" for p in self.problems)])

    def require_usable(self) -> None:
        """Raise WorkbenchError (one sentence) when the file has no usable example."""
        if self.examples:
            return
        if not self.records:
            raise WorkbenchError(f"{self.path.name} holds no records, so there is nothing to train on.")
        first = self.problems[0]
        more = f" (and {self.dropped - 1} more problems)" if self.dropped > 1 else ""
        raise WorkbenchError(f"{self.path.name} has no usable example: {first}{more}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: file facts, counts, drop reasons and every problem."""
        return {
            "file": self.path.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "format": self.format,
            "shape": self.shape,
            "records": self.records,
            "kept": self.kept,
            "dropped": self.dropped,
            "dropped_by_kind": self.dropped_by_kind(),
            "max_length": self.max_length,
            "problems": [{"line": p.line, "kind": p.kind, "reason": p.reason} for p in self.problems],
        }


def _json_items(text: str) -> Iterator[tuple[int, Any]]:
    """(line, value) for each item of a JSON list, the line being where the item starts.

    The whole text is parsed first so a syntax error is reported once, with its position.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkbenchError(
            f"The file is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from None
    except RecursionError:  # Python's parser recurses per level; no dataset nests this deep
        raise WorkbenchError("The file nests lists or objects too deeply to be a dataset.") from None
    if not isinstance(data, list):
        raise WorkbenchError("A .json dataset must hold a list of records; use .jsonl for one record per line.")
    # json gives no positions for list items: walk the list with raw_decode to find where each starts.
    decoder, pos = json.JSONDecoder(), text.index("[") + 1
    for _ in data:
        while text[pos] in " \t\r\n,":
            pos += 1
        value, end = decoder.raw_decode(text, pos)
        yield text.count("\n", 0, pos) + 1, value
        pos = end


def _jsonl_items(text: str) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue  # blank lines separate nothing and hold no record
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, Problem(number, "bad-json", f"not valid JSON ({exc.msg} at column {exc.colno})")
        except RecursionError:
            yield number, Problem(number, "bad-json", "nests lists or objects too deeply")


def _csv_items(text: str) -> Iterator[tuple[int, Any]]:
    reader = csv.DictReader(text.splitlines(keepends=True))
    if not reader.fieldnames:
        return
    start = reader.line_num + 1
    for row in reader:
        if None in row:  # more cells than header columns
            yield (
                start,
                Problem(
                    start,
                    "wrong-type",
                    f"has {len(reader.fieldnames) + len(row[None])} cells, the header has {len(reader.fieldnames)}",
                ),
            )
        else:
            record = {k: v for k, v in row.items() if v is not None}
            if "messages" in record:
                try:
                    record["messages"] = json.loads(record["messages"])
                except json.JSONDecodeError as exc:
                    record = Problem(start, "bad-json", f"the messages cell is not valid JSON ({exc.msg})")
            yield start, record
        start = reader.line_num + 1


def detect_shape(record: dict[str, Any]) -> str | None:
    """The shape a record's keys indicate, or None."""
    if "messages" in record:
        return "chat"
    if "instruction" in record:
        return "alpaca"
    if "input" in record or "output" in record:
        return "pairs"
    return None


def _text(record: dict[str, Any], key: str, line: int, required: bool = True) -> str | Problem:
    if key not in record or record[key] is None:
        if required:
            return Problem(line, "missing-field", f"missing field {key!r}")
        return ""
    value = record[key]
    if not isinstance(value, str):
        return Problem(line, "wrong-type", f"field {key!r} must be a string, not {type(value).__name__}")
    if required and not value.strip():
        return Problem(line, "empty-content", f"field {key!r} is empty")
    return value


def _check_messages(messages: Any, line: int) -> tuple[Message, ...] | Problem:
    if not isinstance(messages, list):
        return Problem(line, "wrong-type", f"'messages' must be a list, not {type(messages).__name__}")
    if not messages:
        return Problem(line, "empty-content", "'messages' is an empty list")
    clean = []
    for i, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            return Problem(line, "wrong-type", f"message {i} must be an object, not {type(message).__name__}")
        for key in ("role", "content"):
            if key not in message:
                return Problem(line, "missing-field", f"message {i} has no {key!r}")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            return Problem(line, "wrong-role", f"message {i} has role {role!r}, not one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            return Problem(line, "wrong-type", f"message {i} content must be a string, not {type(content).__name__}")
        if not content.strip():
            return Problem(line, "empty-content", f"message {i} ({role}) has empty content")
        clean.append({"role": role, "content": content})
    if clean[-1]["role"] != "assistant":
        return Problem(
            line, "last-not-assistant", f"the last message is from the {clean[-1]['role']}, not the assistant"
        )
    return tuple(clean)


def to_conversation(record: Any, shape: str, line: int) -> tuple[Message, ...] | Problem:
    """One record of a file of `shape` as a conversation, or the Problem that prevents it."""
    if isinstance(record, Problem):
        return record
    if not isinstance(record, dict):
        return Problem(line, "not-object", f"a record must be an object, not {type(record).__name__}")
    if shape == "chat":
        if "messages" not in record:
            return Problem(line, "missing-field", "missing field 'messages'")
        return _check_messages(record["messages"], line)
    fields = ("instruction", "input", "output") if shape == "alpaca" else ("input", "output")
    values = {}
    for key in fields:
        values[key] = _text(record, key, line, required=not (shape == "alpaca" and key == "input"))
        if isinstance(values[key], Problem):
            return values[key]
    system = _text(record, "system", line, required=False)
    if isinstance(system, Problem):
        return system
    if shape == "alpaca":
        prompt = values["instruction"] + (f"\n\n{values['input']}" if values["input"].strip() else "")
    else:
        prompt = values["input"]
    head = [{"role": "system", "content": system}] if system.strip() else []
    return (*head, {"role": "user", "content": prompt}, {"role": "assistant", "content": values["output"]})


def _records(path: Path, fmt: str) -> Iterator[tuple[int, Any]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WorkbenchError(f"{path.name} is not UTF-8 text (byte {exc.start} cannot be decoded).") from None
    if fmt == "json" and text.lstrip().startswith("{"):
        fmt = "jsonl"  # a .json file holding one object per line is JSONL in all but name
    try:
        yield from {"json": _json_items, "jsonl": _jsonl_items, "csv": _csv_items}[fmt](text)
    except WorkbenchError as exc:
        raise WorkbenchError(f"{path.name}: {exc}") from None


def file_records(path: str | Path, what: str = "dataset") -> tuple[Path, str, list[tuple[int, Any]]]:
    """(path, format, [(line, record or Problem)]) of a .jsonl, .json or .csv file (`what` names it in errors).

    Raises:
        WorkbenchError: The file is missing, of an unknown type, not text, or a JSON file that does not parse.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WorkbenchError(f"There is no {what} file at {path}.")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise WorkbenchError(f"{path.name} is not a {what} file: use .jsonl, .json or .csv.")
    return path, fmt, list(_records(path, fmt))


def token_length(tokenizer: Any, messages: Sequence[Message]) -> int:
    """Length in tokens of a whole conversation in the tokenizer's chat template."""
    ids = tokenizer.apply_chat_template(list(messages), tokenize=True, return_dict=True)["input_ids"]
    return len(ids)


def read_dataset(path: str | Path, tokenizer: Any = None, max_length: int | None = None) -> DatasetReport:
    """Read and validate a dataset file.

    Args:
        path: A .jsonl, .json or .csv file.
        tokenizer: When given, each conversation's length is measured with its chat template.
        max_length: With a tokenizer, conversations longer than this many tokens are dropped.

    Raises:
        WorkbenchError: The file is missing, of an unknown type, not text, or a JSON file that does not
            parse. A file that parses but holds no usable example comes back with its problems; call
            `require_usable()`.
    """
    path, fmt, items = file_records(path)
    shape = next((detect_shape(r) for _, r in items if isinstance(r, dict) and detect_shape(r)), None)
    report = DatasetReport(path, fmt, shape, file_sha256(path), records=len(items), max_length=max_length)
    for line, record in items:
        if shape is None:
            found = ", ".join(sorted(record)) if isinstance(record, dict) else type(record).__name__
            problem = (
                record
                if isinstance(record, Problem)
                else Problem(
                    line,
                    "missing-field",
                    f"no 'messages', 'instruction' or 'input'/'output' field (found: {found or 'nothing'})",
                )
            )
            report.problems.append(problem)
            continue
        result = to_conversation(record, shape, line)
        if isinstance(result, Problem):
            report.problems.append(result)
        else:
            report.examples.append(Example(line, result))
    if tokenizer is not None:
        _measure(report, tokenizer, max_length)
    report.problems.sort(key=lambda p: p.line)
    return report


def _measure(report: DatasetReport, tokenizer: Any, max_length: int | None) -> None:
    kept = []
    for example in report.examples:
        n = token_length(tokenizer, example.messages)
        if max_length is not None and n > max_length:
            report.problems.append(
                Problem(example.line, "too-long", f"{n} tokens, longer than the maximum of {max_length}")
            )
        else:
            kept.append(Example(example.line, example.messages, n))
    report.examples = kept


def split_examples(examples: Sequence[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out `fraction` of the examples for validation with a seeded shuffle (datasets' train_test_split).

    Returns (train, validation); the same examples, fraction and seed give the same split every time.

    Raises:
        WorkbenchError: The fraction is outside [0, 0.5] or leaves one side empty.
    """
    if not 0 <= fraction <= 0.5:
        raise WorkbenchError(f"The validation fraction must be between 0 and 0.5, not {fraction}.")
    if fraction == 0:
        return list(examples), []
    if len(examples) < 2:
        raise WorkbenchError("At least 2 usable examples are needed to hold some out for validation.")
    from datasets import Dataset

    index = Dataset.from_dict({"i": list(range(len(examples)))})
    held = max(1, round(len(examples) * fraction))
    parts = index.train_test_split(test_size=held, seed=seed, shuffle=True)
    return [examples[i] for i in parts["train"]["i"]], [examples[i] for i in sorted(parts["test"]["i"])]
