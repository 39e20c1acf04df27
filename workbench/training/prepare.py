"""Before training: the base model's tokenizer, the validated datasets and the train/validation split.

`prepare_data(config, settings)` is what the CLI prints and the UI shows before a run may start: it
loads only the tokenizer (never the weights), validates the files against `max_length`, and splits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.loading import declared_template, load_tokenizer
from workbench.registry import CHAT_TEMPLATE_FILE, Adapter, BaseModel, find_adapter, resolve_base
from workbench.training.config import JobConfig
from workbench.training.data import DatasetReport, Example, read_dataset, split_examples
from workbench.training.preferences import read_preferences, require_pairs
from workbench.training.unpaired import MIN_EACH, kto_weights, label_counts, read_labelled, require_labelled

# method -> (reads a file, what one example is, the method's minimum counts)
READERS = {
    "sft": (read_dataset, "conversations", None),
    "dpo": (read_preferences, "pairs", require_pairs),
    "kto": (read_labelled, "replies", require_labelled),
}


def job_settings(config: JobConfig, settings: Settings) -> Settings:
    """Settings whose default base model is the job's (so every loader agrees on the base)."""
    return dataclasses.replace(settings, model=config.base_model) if config.base_model else settings


@dataclass
class PreparedData:
    """Validated, split data for a job.

    Attributes:
        base: The base model the job trains.
        tokenizer: Its tokenizer.
        train_report: Validation report of the training file.
        val_report: Validation report of the validation file (None when split from the training file).
        train: Training examples.
        val: Validation examples (empty when the job has no validation).
        declared_template: The chat template the job declared for a base model without one (its text), or
            None when the model has its own.
        init_adapter: The adapter the job continues (`JobConfig.init_adapter`), checked against the base.
        unit: What one example is: "conversations" (SFT), "pairs" (DPO, PreferencePair examples) or "replies"
            (KTO, LabelledReply examples).
    """

    base: BaseModel
    tokenizer: Any
    train_report: DatasetReport
    val_report: DatasetReport | None
    train: list[Example]
    val: list[Example]
    declared_template: str | None = None
    init_adapter: Adapter | None = None
    unit: str = "conversations"

    def summary(self) -> str:
        """The validation report a person reads before training: each file's report, then the split."""
        parts = [self.train_report.summary()]
        if self.val_report is not None:
            parts.append(self.val_report.summary())
        parts.append(f"Training on {len(self.train)} {self.unit}, validating on {len(self.val)}.")
        if self.unit == "replies":
            liked, disliked = label_counts(self.train)
            desirable, undesirable = kto_weights(self.train)
            parts.append(
                f"{liked} liked and {disliked} disliked; KTO weighs them {desirable:g} and {undesirable:g} so that "
                "both kinds count alike."
            )
        if self.declared_template is not None:
            parts.append(f"{self.base.name} has no chat template: the run declares one and saves it with each adapter.")
        return "\n".join(parts)

    def datasets_meta(self, config: JobConfig) -> dict[str, Any]:
        """Dataset names, SHA-256 and counts for workbench.json."""

        def facts(report: DatasetReport) -> dict[str, Any]:
            data = report.to_dict()
            return {k: data[k] for k in ("file", "path", "sha256", "format", "shape", "records", "kept", "dropped")} | {
                "dropped_by_kind": data["dropped_by_kind"]
            }

        meta: dict[str, Any] = {"train": facts(self.train_report)}
        if self.val_report is not None:
            meta["validation"] = facts(self.val_report)
        elif self.val:
            meta["validation"] = {"split_from": "train", "fraction": config.val_fraction, "seed": config.seed}
        return meta


def _usable(report: DatasetReport, echo) -> DatasetReport:
    if not report.examples and echo is not None:
        echo(report.summary())
    report.require_usable()
    return report


def prepare_data(config: JobConfig, settings: Settings, tokenizer: Any = None, echo=None) -> PreparedData:
    """Resolve the base model, validate the dataset files and split them.

    Args:
        config: The job (its method, files, max length, validation fraction and seed are used).
        settings: Where the base model is found.
        tokenizer: The base model's tokenizer, when the caller has it already.
        echo: Given a file's full report before a file without a usable example is refused.

    Raises:
        WorkbenchError: Unknown base model, a missing or unreadable file, a file without a usable example (or,
            for DPO, too few pairs; for KTO, too few liked or disliked replies), or an `init_adapter` that is
            missing or trained for another base.
    """
    settings = job_settings(config, settings)
    base = resolve_base(settings)
    adapter = find_adapter(settings, config.init_adapter, base) if config.init_adapter else None
    tokenizer = tokenizer or load_tokenizer(base, settings)
    declared = None
    if adapter is not None and (adapter.path / CHAT_TEMPLATE_FILE).is_file():
        declared = (adapter.path / CHAT_TEMPLATE_FILE).read_text(encoding="utf-8")  # the template it learned
        tokenizer.chat_template = declared
    elif not getattr(tokenizer, "chat_template", None):  # a base model learns the template the run declares
        declared = declared_template(config.chat_template)
        tokenizer.chat_template = declared
    read, unit, require = READERS[config.method]

    def usable(path: str) -> DatasetReport:
        report = _usable(read(path, tokenizer, config.max_length), echo)
        if require is not None:
            require(report)
        return report

    train_report = usable(config.data)
    val_report = None
    if config.val_data:
        val_report = usable(config.val_data)
        train, val = list(train_report.examples), list(val_report.examples)
    else:
        train, val = split_examples(train_report.examples, config.val_fraction, config.seed)
        if config.method == "kto" and min(label_counts(train)) < MIN_EACH:
            liked, disliked = label_counts(train)
            raise WorkbenchError(
                f"After holding out the validation replies, {liked} liked and {disliked} disliked remain to train "
                f"on; KTO needs at least {MIN_EACH} of each: lower the validation fraction or add feedback."
            )
    return PreparedData(base, tokenizer, train_report, val_report, train, val, declared, adapter, unit)
