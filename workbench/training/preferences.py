"""Preference files for DPO -> validated prompt/chosen/rejected pairs, every problem reported by line number.

Accepted files: JSONL, JSON (a list) or CSV, one record per pair, in TRL's preference shape:
    {"prompt": ..., "chosen": ..., "rejected": ...}    (+ "chat_template": optional Jinja text)
where `prompt` is the user's text or a conversation ([{"role", "content"}, ...] ending with the user), and
`chosen`/`rejected` are the replies: text, or a list ending with one assistant message. When the replies are
whole conversations (TRL's implicit-prompt form, no "prompt" field) their shared beginning is the prompt, and
two that begin differently answer different prompts: that record is refused.

Each pair is rendered to text with a chat template -- the record's own "chat_template" when it names the one
its outputs were generated with (pairs from the store's votes do), else the training tokenizer's -- so TRL's
DPOTrainer trains on exactly the context each reply was generated in.

    report = read_preferences("pairs.jsonl", tokenizer, max_length=256)
    print(report.summary())      # kept/dropped with reasons, one line per problem
    report.require_usable()
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.evaluation.fingerprints import file_sha256
from workbench.training.data import DatasetReport, Problem, _check_messages, file_records

SHAPE = "preferences"
FIELDS = ("prompt", "chosen", "rejected")
MIN_PAIRS = 4  # fewer decisive pairs than this teach a preference nothing a validation split could show


@dataclass(frozen=True)
class PreferencePair:
    """One usable preference, rendered in its chat template.

    Attributes:
        line: Line where its record starts in the file.
        prompt: The prompt as the model saw it (chat template applied, generation prompt included).
        chosen: The preferred reply, ending with the template's end of turn.
        rejected: The other reply, the same way.
        tokens: Length of the longer of prompt+chosen and prompt+rejected, in tokens.
    """

    line: int
    prompt: str
    chosen: str
    rejected: str
    tokens: int | None = None

    def to_row(self) -> dict[str, str]:
        """The row TRL's DPOTrainer reads (standard, already templated form)."""
        return {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}


def _prompt(value: Any, line: int) -> list[dict[str, str]] | Problem:
    if isinstance(value, str):
        if not value.strip():
            return Problem(line, "empty-content", "field 'prompt' is empty")
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        return Problem(
            line, "wrong-type", f"field 'prompt' must be text or a list of messages, not {type(value).__name__}"
        )
    checked = _check_messages([*value, {"role": "assistant", "content": "-"}], line)
    if isinstance(checked, Problem):
        return checked
    if checked[-2]["role"] != "user":
        return Problem(line, "wrong-role", "the prompt's last message must be the user's")
    return list(checked[:-1])


def _reply(record: dict[str, Any], key: str, line: int) -> tuple[list[dict[str, str]], str] | Problem:
    """(the conversation before the reply, the reply text) of a reply field (chosen, rejected, or a KTO
    completion)."""
    if key not in record or record[key] is None:
        return Problem(line, "missing-field", f"missing field {key!r}")
    value = record[key]
    if isinstance(value, str):
        return ([], value) if value.strip() else Problem(line, "empty-content", f"field {key!r} is empty")
    if not isinstance(value, list):
        return Problem(
            line, "wrong-type", f"field {key!r} must be text or a list of messages, not {type(value).__name__}"
        )
    checked = _check_messages(value, line)
    if isinstance(checked, Problem):
        return Problem(line, checked.kind, f"{key}: {checked.reason}")
    return list(checked[:-1]), checked[-1]["content"]


def to_pair(record: Any, line: int) -> tuple[list[dict[str, str]], str, str] | Problem:
    """(prompt messages, chosen text, rejected text) of one record, or the Problem that prevents it."""
    if isinstance(record, Problem):
        return record
    if not isinstance(record, dict):
        return Problem(line, "not-object", f"a record must be an object, not {type(record).__name__}")
    chosen, rejected = _reply(record, "chosen", line), _reply(record, "rejected", line)
    for part in (chosen, rejected):
        if isinstance(part, Problem):
            return part
    if chosen[0] != rejected[0]:
        return Problem(line, "different-prompts", "the chosen and rejected replies answer different prompts")
    if record.get("prompt") is not None:
        prompt = _prompt(record["prompt"], line)
        if isinstance(prompt, Problem):
            return prompt
        prompt = prompt + chosen[0]
    elif chosen[0]:
        prompt = chosen[0]
    else:
        return Problem(line, "missing-field", "missing field 'prompt' (and the replies carry no conversation)")
    if chosen[1].strip() == rejected[1].strip():
        return Problem(line, "same-replies", "the chosen and rejected replies are the same text")
    return prompt, chosen[1], rejected[1]


def _template(record: Any, line: int) -> str | Problem | None:
    value = record.get("chat_template") if isinstance(record, dict) else None
    if value is None or (isinstance(value, str) and value.strip()):
        return value
    return Problem(line, "wrong-type", "field 'chat_template' must be a template's text")


def render(
    tokenizer: Any, prompt: list[dict[str, str]], reply: str, template: str | None = None
) -> tuple[str, str] | None:
    """(prompt text with the generation prompt, reply text with its end of turn) in a chat template, or None
    when the template renders the prompt differently once the reply follows (no clean boundary)."""
    kwargs = {"chat_template": template} if template else {}
    head = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True, **kwargs)
    full = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": reply}], tokenize=False, **kwargs)
    if not full.startswith(head):
        return None
    tail = full[len(head) :]
    eos = getattr(tokenizer, "eos_token", None)
    # TRL appends the EOS token to a reply that does not end with it; the template's newline after it would
    # make it add a second one.
    if eos and tail.rstrip().endswith(eos):
        tail = tail.rstrip()
    return head, tail


def _rendered(tokenizer: Any, line: int, pair: tuple, template: str | None, max_length: int | None):
    prompt, chosen, rejected = pair
    try:
        a, b = render(tokenizer, prompt, chosen, template), render(tokenizer, prompt, rejected, template)
    except Exception as exc:  # a broken Jinja template in the record: that record's problem, not a crash
        return Problem(line, "wrong-type", f"the chat template cannot render it ({str(exc).splitlines()[0]})")
    if a is None or b is None:
        return Problem(line, "wrong-type", "the chat template renders the prompt differently once a reply follows")
    n = max(len(tokenizer(a[0] + a[1])["input_ids"]), len(tokenizer(b[0] + b[1])["input_ids"]))
    if max_length is not None and n > max_length:
        return Problem(line, "too-long", f"{n} tokens, longer than the maximum of {max_length}")
    return PreferencePair(line, a[0], a[1], b[1], n)


def read_preferences(path: str | Path, tokenizer: Any, max_length: int | None = None) -> DatasetReport:
    """Read and validate a preference file; `report.examples` holds PreferencePair objects.

    Raises:
        WorkbenchError: The file is missing, of an unknown type, not text, or a JSON file that does not parse.
    """
    path, fmt, items = file_records(path, "preference")
    report = DatasetReport(path, fmt, SHAPE, file_sha256(path), records=len(items), max_length=max_length)
    for line, record in items:
        pair = to_pair(_decoded(record, line) if fmt == "csv" else record, line)
        template = _template(record, line)
        result = pair if isinstance(pair, Problem) else template
        if not isinstance(result, Problem):
            result = _rendered(tokenizer, line, pair, template, max_length)
        (report.problems if isinstance(result, Problem) else report.examples).append(result)
    report.problems.sort(key=lambda p: p.line)
    return report


def _decoded(record: Any, line: int) -> Any:
    """A CSV row's prompt/chosen/rejected cells that hold message lists as JSON text, decoded."""
    if not isinstance(record, dict):
        return record
    import json

    out = dict(record)
    for key in FIELDS:
        value = out.get(key)
        if isinstance(value, str) and value.lstrip().startswith("[{"):
            try:
                out[key] = json.loads(value)
            except json.JSONDecodeError:
                return Problem(line, "bad-json", f"the {key} cell looks like JSON but is not valid")
    return out


def require_pairs(report: DatasetReport, part: str = "training") -> None:
    """Raise WorkbenchError when a file has too few usable pairs for preference training."""
    report.require_usable()
    if len(report.examples) < MIN_PAIRS:
        raise WorkbenchError(
            f"{report.path.name} has {len(report.examples)} usable {part} pairs; preference training needs at "
            f"least {MIN_PAIRS}."
        )
