"""Unpaired feedback files for KTO -> validated, templated prompt/completion/label replies, problems by line number.

Accepted files: JSONL, JSON (a list) or CSV, one reply per record, in TRL's unpaired preference shape:
    {"prompt": ..., "completion": ..., "label": true}    (+ "chat_template": optional Jinja text)
where `prompt` is the user's text or a conversation ending with the user, `completion` the reply (text, or a list
ending with one assistant message) and `label` whether the reply is desirable (a like: true; a dislike: false).
Each reply is rendered in its record's chat template (likes from the store carry the one their reply was generated
with) or the tokenizer's, as `preferences.render` does for DPO pairs.

KTO learns from both kinds: a file needs at least MIN_EACH liked and MIN_EACH disliked replies. Unequal counts are
evened out by the loss weights (`kto_weights`), as TRL's KTO documentation recommends.

    report = read_labelled("likes.jsonl", tokenizer, max_length=256)
    require_labelled(report)
    kto_weights(report.examples)      # (desirable_weight, undesirable_weight)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.evaluation.fingerprints import file_sha256
from workbench.training.data import DatasetReport, Problem, file_records
from workbench.training.preferences import _prompt, _reply, _template, render

SHAPE = "unpaired"
MIN_EACH = 2  # liked and disliked replies each: KTO's loss and its KL estimate need both kinds in the data
# JSON's true/false (and 1/0, equal to them in Python), CSV's text
LABELS = {True: True, False: False, "true": True, "false": False, "1": True, "0": False}


@dataclass(frozen=True)
class LabelledReply:
    """One usable reply with its label, rendered in its chat template.

    Attributes:
        line: Line where its record starts in the file.
        prompt: The prompt as the model saw it (chat template applied, generation prompt included).
        completion: The reply, ending with the template's end of turn.
        label: True for a desirable (liked) reply, False for an undesirable (disliked) one.
        tokens: Length of prompt + completion in tokens.
    """

    line: int
    prompt: str
    completion: str
    label: bool
    tokens: int | None = None

    def to_row(self) -> dict[str, Any]:
        """The row TRL's KTOTrainer reads (standard, already templated, unpaired form)."""
        return {"prompt": self.prompt, "completion": self.completion, "label": self.label}


def _label(record: dict[str, Any], line: int) -> bool | Problem:
    if record.get("label") is None:
        return Problem(line, "missing-field", "missing field 'label'")
    value = record["label"]
    key = value.strip().lower() if isinstance(value, str) else value
    if isinstance(key, float) or key not in LABELS:  # 1.0 or "yes" is not a label a person meant to write
        return Problem(line, "wrong-type", f"field 'label' must be true or false, not {value!r}")
    return LABELS[key]


def to_labelled(record: Any, line: int) -> tuple[list[dict[str, str]], str, bool] | Problem:
    """(prompt messages, reply text, label) of one record, or the Problem that prevents it."""
    if isinstance(record, Problem):
        return record
    if not isinstance(record, dict):
        return Problem(line, "not-object", f"a record must be an object, not {type(record).__name__}")
    if record.get("prompt") is None:
        return Problem(line, "missing-field", "missing field 'prompt'")
    prompt = _prompt(_decoded(record["prompt"]), line)
    completion = _reply({**record, "completion": _decoded(record.get("completion"))}, "completion", line)
    label = _label(record, line)
    for part in (prompt, completion, label):
        if isinstance(part, Problem):
            return part
    return prompt + completion[0], completion[1], label


def _decoded(value: Any) -> Any:
    """A CSV cell that holds a message list as JSON text, decoded (anything else as it is)."""
    if isinstance(value, str) and value.lstrip().startswith("[{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _rendered(tokenizer: Any, line: int, item: tuple, template: str | None, max_length: int | None):
    prompt, reply, label = item
    try:
        parts = render(tokenizer, prompt, reply, template)
    except Exception as exc:  # a broken Jinja template in the record: that record's problem, not a crash
        return Problem(line, "wrong-type", f"the chat template cannot render it ({str(exc).splitlines()[0]})")
    if parts is None:
        return Problem(line, "wrong-type", "the chat template renders the prompt differently once a reply follows")
    n = len(tokenizer(parts[0] + parts[1])["input_ids"])
    if max_length is not None and n > max_length:
        return Problem(line, "too-long", f"{n} tokens, longer than the maximum of {max_length}")
    return LabelledReply(line, parts[0], parts[1], label, n)


def read_labelled(path: str | Path, tokenizer: Any, max_length: int | None = None) -> DatasetReport:
    """Read and validate an unpaired feedback file; `report.examples` holds LabelledReply objects.

    Raises:
        WorkbenchError: The file is missing, of an unknown type, not text, or a JSON file that does not parse.
    """
    path, fmt, items = file_records(path, "feedback")
    report = DatasetReport(path, fmt, SHAPE, file_sha256(path), records=len(items), max_length=max_length)
    for line, record in items:
        item = to_labelled(record, line)
        template = _template(record, line)
        result = item if isinstance(item, Problem) else template
        if not isinstance(result, Problem):
            result = _rendered(tokenizer, line, item, template, max_length)
        (report.problems if isinstance(result, Problem) else report.examples).append(result)
    report.problems.sort(key=lambda p: p.line)
    return report


def label_counts(examples: Sequence[LabelledReply]) -> tuple[int, int]:
    """(liked, disliked) replies."""
    liked = sum(1 for e in examples if e.label)
    return liked, len(examples) - liked


def require_labelled(report: DatasetReport, part: str = "training") -> None:
    """Raise WorkbenchError (one sentence) when a file has too few liked or disliked replies for KTO."""
    report.require_usable()
    liked, disliked = label_counts(report.examples)
    if min(liked, disliked) < MIN_EACH:
        raise WorkbenchError(
            f"{report.path.name} has {liked} liked and {disliked} disliked usable {part} replies; KTO needs at "
            f"least {MIN_EACH} of each."
        )


def kto_weights(examples: Sequence[LabelledReply]) -> tuple[float, float]:
    """(desirable_weight, undesirable_weight) that even out unequal counts of liked and disliked replies.

    TRL's KTO documentation recommends weights such that desirable_weight * liked / (undesirable_weight *
    disliked) lies between 1:1 and 4:3; the minority kind is weighted up to exactly 1:1, the majority keeps 1.
    """
    liked, disliked = label_counts(examples)
    if not liked or not disliked:
        return 1.0, 1.0
    if liked >= disliked:
        return 1.0, round(liked / disliked, 4)
    return round(disliked / liked, 4), 1.0
