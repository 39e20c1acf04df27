"""The fine-tuning job's configuration (a frozen dataclass that checks itself) and the run folder's layout.

    config = JobConfig(run="my-run", data="data/fastchat_identity/train.jsonl", max_steps=40)
    paths = RunPaths.of(settings, config.run)
    paths.checkpoint(20)   # <adapters_dir>/my-run/checkpoint-20

Torch-free, so the CLI and the UI can check a job before a training process starts.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.registry import BASE_NAME
from workbench.safety.names import check_name, inside

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
RUN_PATH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(/checkpoint-\d+)?$")  # an adapter: run[/checkpoint-N]
MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
PACKING = ("auto", "on", "off")
SCHEDULERS = ("linear", "cosine", "constant")
METHODS = ("sft", "dpo")  # supervised fine-tuning on conversations; preference training on chosen/rejected pairs
# TRL's pairwise DPO losses that log the chosen-rejected reward margin (its other losses need extra data).
LOSS_TYPES = ("sigmoid", "hinge", "ipo", "robust", "bco_pair", "sppo_hard", "nca_pair", "apo_zero", "apo_down")
# transformers' own tracker integrations; "tensorboard" is the local one that needs no account.
REPORT_TO = ("none", "tensorboard", "trackio", "wandb", "mlflow")

# flag -> (JobConfig field, type, help): every hyperparameter is a CLI flag (cli/train.py) and a job
# subprocess argument (jobs.py); its default is JobConfig's.
HYPERPARAMETERS = {
    "--method": ("method", str, f"training method: {', '.join(METHODS)} (dpo trains on prompt/chosen/rejected pairs)"),
    "--beta": ("beta", float, "DPO: how far the policy may move from the reference (higher = closer)"),
    "--loss-type": ("loss_type", str, f"DPO loss: {', '.join(LOSS_TYPES)}"),
    "--init-adapter": ("init_adapter", str, "start from this adapter (e.g. an SFT run) instead of a new LoRA"),
    "--report-to": ("report_to", str, f"tracker: {', '.join(REPORT_TO)} (logs go to <run>/tracking/)"),
    "--learning-rate": ("learning_rate", float, "peak learning rate"),
    "--batch-size": ("batch_size", int, "sequences (packed rows) per device per step"),
    "--grad-accum": ("grad_accum", int, "gradient accumulation steps"),
    "--epochs": ("epochs", float, "passes over the data (when --max-steps is 0)"),
    "--max-steps": ("max_steps", int, "optimizer steps; 0 = as many as --epochs take"),
    "--warmup": ("warmup", float, "warmup steps, or a fraction below 1 of all steps"),
    "--weight-decay": ("weight_decay", float, "AdamW weight decay"),
    "--scheduler": ("scheduler", str, f"learning-rate schedule: {', '.join(SCHEDULERS)}"),
    "--lora-r": ("lora_r", int, "LoRA rank"),
    "--lora-alpha": ("lora_alpha", int, "LoRA alpha (scale = alpha / r)"),
    "--lora-dropout": ("lora_dropout", float, "LoRA dropout"),
    "--target-modules": ("target_modules", str, "comma-separated module names, or all-linear"),
    "--max-length": ("max_length", int, "longest conversation in tokens; longer ones are dropped and reported"),
    "--packing": ("packing", str, f"pack short conversations into rows: {', '.join(PACKING)}"),
    "--seed": ("seed", int, "seed for the split, data order and LoRA init"),
    "--val-fraction": ("val_fraction", float, "share of --data held out for validation when there is no --val"),
    "--logging-steps": ("logging_steps", int, "log loss, learning rate and tokens/s every N steps"),
    "--eval-steps": ("eval_steps", int, "validation loss every N steps"),
    "--save-steps": ("save_steps", int, "checkpoint every N steps"),
    "--patience": ("patience", int, "stop after N evaluations without a lower validation loss; 0 = off"),
    "--chat-template": (
        "chat_template",
        str,
        "for a base model without one: the chat template to declare, chatml or a .jinja file",
    ),
}
# `make finetune-demo` and the Fine-tune tab's defaults: the embedded model on the identity data, 2 CPU cores.
DEMO_SETTINGS = {
    "max_steps": 40,
    "max_length": 256,
    "batch_size": 2,
    "learning_rate": 5e-4,
    "val_fraction": 0.05,
    "eval_steps": 10,
    "save_steps": 10,
    "warmup": 0.1,
}


def _positive(name: str, value: float, *, zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (value == 0 and not zero):
        raise WorkbenchError(f"{name} must be {'0 or more' if zero else 'more than 0'}, not {value!r}.")


@dataclass(frozen=True)
class JobConfig:
    """Everything that defines a LoRA training run. Defaults suit the embedded 135M model on a CPU.

    Attributes:
        run: Run name: the folder under the adapters folder and the adapters' name prefix.
        data: Training file (.jsonl, .json or .csv; pairs, chat or Alpaca shape).
        val_data: Validation file; when None, `val_fraction` of `data` is held out instead.
        val_fraction: Share of `data` held out for validation when there is no `val_data` (0 = none).
        base_model: Base model name or source (None: the configured default, the embedded model).
        learning_rate: Peak learning rate of the AdamW optimizer.
        batch_size: Sequences (packed rows when packing) per device per step.
        grad_accum: Gradient accumulation steps per optimizer step.
        epochs: Passes over the training data (used when `max_steps` is 0).
        max_steps: Optimizer steps to run; 0 means as many as `epochs` take.
        warmup: Warmup steps; a value below 1 is a fraction of all steps.
        weight_decay: AdamW weight decay.
        scheduler: Learning-rate schedule after warmup: linear, cosine or constant.
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling numerator (the update is scaled by alpha / r).
        lora_dropout: Dropout on the LoRA input.
        target_modules: Module names to adapt, or ("all-linear",) for every linear layer but the output head.
        max_length: Longest conversation in tokens; longer ones are dropped by validation (and reported).
        packing: "auto" packs several short conversations into one row when that saves work, "on", "off".
        seed: Seed for the validation split, data order, LoRA initialisation and dropout.
        logging_steps: Log train loss, learning rate and tokens/s every this many steps.
        eval_steps: Compute the validation loss every this many steps (and at the start and the end).
        save_steps: Write a checkpoint every this many steps (and at the end).
        patience: Stop after this many evaluations without a lower validation loss (0: never stop early).
        gradient_checkpointing: Trade compute for memory (useful for big models on a GPU).
        eval_suites: Evaluation suites (evals/<name>.yaml) to run on every checkpoint.
        method: "sft" (conversations, TRL's SFTTrainer) or "dpo" (prompt/chosen/rejected pairs, TRL's DPOTrainer).
        beta: DPO's beta: the strength of the pull towards the reference model.
        loss_type: DPO's loss (TRL's name), see LOSS_TYPES.
        init_adapter: An adapter (name under the adapters folder) to continue training instead of a new LoRA; for
            DPO it is also the reference model (the usual SFT-then-DPO recipe). Its base must be the job's.
        report_to: A tracker through transformers' integrations (see REPORT_TO); files go to `<run>/tracking/`.
        votes: For DPO from the store's votes: the vote filters and counts (recorded in workbench.json).
        chat_template: The chat template to declare when the base model has none (a base model taught to
            chat): "chatml" or a `.jinja` file. It is saved beside every adapter of the run, and the chat uses
            it with them. A model with its own template always trains with its own.
    """

    run: str
    data: str
    val_data: str | None = None
    val_fraction: float = 0.1
    base_model: str | None = None
    learning_rate: float = 2e-4
    batch_size: int = 4
    grad_accum: int = 1
    epochs: float = 1.0
    max_steps: int = 0
    warmup: float = 0.05
    weight_decay: float = 0.0
    scheduler: str = "linear"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ("all-linear",)
    max_length: int = 512
    packing: str = "auto"
    seed: int = 42
    logging_steps: int = 1
    eval_steps: int = 20
    save_steps: int = 20
    patience: int = 0
    gradient_checkpointing: bool = False
    eval_suites: tuple[str, ...] = ()
    chat_template: str = "chatml"
    method: str = "sft"
    beta: float = 0.1
    loss_type: str = "sigmoid"
    init_adapter: str | None = None
    report_to: str = "none"
    votes: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.run, str) or not RUN_NAME.match(self.run) or self.run == BASE_NAME:
            raise WorkbenchError(
                f"The run name {self.run!r} is not usable: use letters, digits, '.', '_' or '-' (up to 100, "
                f"starting with a letter or digit, not {BASE_NAME!r})."
            )
        if not self.data or not str(self.data).strip():
            raise WorkbenchError("A training data file is needed.")
        # Absolute, so that a resume from another working directory reads the same files.
        object.__setattr__(self, "data", str(Path(self.data).expanduser().absolute()))
        if self.val_data is not None and str(self.val_data).strip():
            object.__setattr__(self, "val_data", str(Path(self.val_data).expanduser().absolute()))
        else:
            object.__setattr__(self, "val_data", None)
        for name in ("target_modules", "eval_suites"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        self._check_numbers()
        self._check_choices()

    def _check_numbers(self) -> None:
        for name in ("learning_rate", "batch_size", "grad_accum", "lora_r", "lora_alpha", "max_length"):
            _positive(name.replace("_", " ").capitalize(), getattr(self, name))
        for name in ("max_steps", "warmup", "weight_decay", "patience", "val_fraction", "lora_dropout"):
            _positive(name.replace("_", " ").capitalize(), getattr(self, name), zero=True)
        for name in ("batch_size", "grad_accum", "lora_r", "max_length", "max_steps", "patience", "seed"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int):
                raise WorkbenchError(f"{name.replace('_', ' ').capitalize()} must be a whole number.")
        for name in ("logging_steps", "eval_steps", "save_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise WorkbenchError(f"{name.replace('_', ' ').capitalize()} must be a whole number of 1 or more.")
        if self.max_steps == 0:
            _positive("Epochs", self.epochs)
        if self.warmup >= 1 and self.warmup != int(self.warmup):
            raise WorkbenchError(f"Warmup must be a whole number of steps or a fraction below 1, not {self.warmup}.")
        if self.val_fraction > 0.5:
            raise WorkbenchError(f"The validation fraction must be at most 0.5, not {self.val_fraction}.")
        if self.lora_dropout >= 1:
            raise WorkbenchError(f"LoRA dropout must be below 1, not {self.lora_dropout}.")
        if self.max_length < 16:
            raise WorkbenchError(f"Max length must be at least 16 tokens, not {self.max_length}.")
        if not 0 <= self.seed < 2**32:
            raise WorkbenchError(f"The seed must be between 0 and {2**32 - 1}, not {self.seed}.")

    def _check_choices(self) -> None:
        if self.packing not in PACKING:
            raise WorkbenchError(f"Packing must be one of {', '.join(PACKING)}, not {self.packing!r}.")
        if self.scheduler not in SCHEDULERS:
            raise WorkbenchError(f"The scheduler must be one of {', '.join(SCHEDULERS)}, not {self.scheduler!r}.")
        if self.target_modules != ("all-linear",):
            if "all-linear" in self.target_modules:
                raise WorkbenchError("Target modules 'all-linear' cannot be combined with other module names.")
            if not self.target_modules or not all(MODULE_NAME.match(m) for m in self.target_modules):
                raise WorkbenchError(
                    f"Target modules must be module names such as q_proj,v_proj, or all-linear, "
                    f"not {','.join(self.target_modules)!r}."
                )
        if self.patience and not self.has_validation:
            raise WorkbenchError("Early stopping needs validation data: give a validation file or a fraction above 0.")
        if any(not isinstance(s, str) or not s.strip() for s in self.eval_suites):
            raise WorkbenchError("Evaluation suite names must not be empty.")
        self._check_method()

    def _check_method(self) -> None:
        if self.method not in METHODS:
            raise WorkbenchError(f"The method must be one of {', '.join(METHODS)}, not {self.method!r}.")
        if self.loss_type not in LOSS_TYPES:
            raise WorkbenchError(f"The DPO loss must be one of {', '.join(LOSS_TYPES)}, not {self.loss_type!r}.")
        if self.report_to not in REPORT_TO:
            raise WorkbenchError(f"Report to one of {', '.join(REPORT_TO)}, not {self.report_to!r}.")
        _positive("Beta", self.beta)
        if self.votes is not None and self.method != "dpo":
            raise WorkbenchError("Training from votes is preference training: use the dpo method.")
        adapter = self.init_adapter
        if adapter is not None and not (isinstance(adapter, str) and RUN_PATH.match(adapter)):
            raise WorkbenchError(f"{adapter!r} is not an adapter name such as my-run or my-run/checkpoint-20.")

    @property
    def has_validation(self) -> bool:
        """Whether a validation loss is computed (a file, or a held-out fraction)."""
        return self.val_data is not None or self.val_fraction > 0

    @property
    def lora_targets(self) -> str | list[str]:
        """`target_modules` as peft's LoraConfig takes it."""
        return "all-linear" if self.target_modules == ("all-linear",) else list(self.target_modules)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples as lists); `from_dict` reads it back."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobConfig:
        """A config from `to_dict` output; unknown keys are refused with one sentence."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise WorkbenchError(f"Unknown training settings: {', '.join(unknown)}.")
        return cls(**data)


@dataclass(frozen=True)
class RunPaths:
    """Where a run's files live under the adapters folder.

    `<run>/checkpoint-<step>/` are published adapters (PEFT files + workbench.json); `<run>/` itself
    holds the final adapter once the run ends, plus `train_log.jsonl`. The trainer's own state
    (optimizer, scheduler, RNG) lives in the hidden `<run>/.trainer/`, which the registry never lists.
    """

    run_dir: Path

    @classmethod
    def of(cls, settings: Settings, run: str) -> RunPaths:
        """The run's paths; a run name that is not a plain name or leads outside the adapters folder (`..`, an
        absolute path, a dot-folder, a symlink out) is refused with one sentence."""
        run = check_name(run, "run")
        inside(settings.adapters_dir, run, "run", folder="the adapters folder")
        return cls(settings.adapters_dir / run)

    @property
    def run(self) -> str:
        return self.run_dir.name

    @property
    def trainer_dir(self) -> Path:
        return self.run_dir / ".trainer"

    @property
    def job_file(self) -> Path:
        """The job's config and dataset fingerprints, written when the run starts (read by --resume)."""
        return self.trainer_dir / "job.json"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "train_log.jsonl"

    def checkpoint(self, step: int) -> Path:
        return self.run_dir / f"checkpoint-{step}"

    def trainer_checkpoint(self, step: int) -> Path:
        return self.trainer_dir / f"checkpoint-{step}"
