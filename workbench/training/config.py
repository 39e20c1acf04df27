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
from workbench.training import hparams
from workbench.training.hparams import DATA, LOGGING, LORA, METHOD, OPTIMISER, hyperparameter

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
RUN_PATH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(/checkpoint-\d+)?$")  # an adapter: run[/checkpoint-N]
MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
PACKING = ("auto", "on", "off")
SCHEDULERS = ("linear", "cosine", "constant")
# supervised fine-tuning on conversations; preference training on chosen/rejected pairs; on liked/disliked replies
METHODS = ("sft", "dpo", "kto")
# TRL's pairwise DPO losses that log the chosen-rejected reward margin (its other losses need extra data).
LOSS_TYPES = ("sigmoid", "hinge", "ipo", "robust", "bco_pair", "sppo_hard", "nca_pair", "apo_zero", "apo_down")
# transformers' own tracker integrations; "tensorboard" is the local one that needs no account.
REPORT_TO = ("none", "tensorboard", "trackio", "wandb", "mlflow")

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


@dataclass(frozen=True)
class JobConfig:
    """Everything that defines a LoRA training run. Defaults suit the embedded 135M model on a CPU.

    The hyperparameters are declared here once each, with their label, help, section and bounds
    (`workbench.training.hparams`): `__post_init__` checks them, `workbench train` makes a flag of each, the
    Fine-tune tab a component, and docs/reference.md a row.

    Attributes:
        run: Run name: the folder under the adapters folder and the adapters' name prefix.
        data: Training file (.jsonl, .json or .csv; pairs, chat or Alpaca shape; DPO: prompt/chosen/rejected;
            KTO: prompt/completion/label).
        val_data: Validation file; when None, `val_fraction` of `data` is held out instead.
        base_model: Base model name or source (None: the configured default, the embedded model).
        eval_suites: Evaluation suites (evals/<name>.yaml) to run on every checkpoint.
        votes: For DPO from the store's votes: the vote filters and counts (recorded in workbench.json).
        likes: For KTO from the store's likes and dislikes: the filters and counts (recorded in workbench.json).
        The hyperparameters: see each field's declaration (`hparams.declared(JobConfig)`).
    """

    run: str
    data: str
    val_data: str | None = None
    base_model: str | None = None
    eval_suites: tuple[str, ...] = ()
    votes: dict[str, Any] | None = None
    likes: dict[str, Any] | None = None
    # --- the hyperparameters, declared once each --------------------------------------------------------------
    method: str = hyperparameter(
        "sft",
        "Method",
        "sft trains on conversations (TRL's SFTTrainer), dpo on prompt/chosen/rejected pairs (TRL's DPOTrainer), "
        "kto on liked and disliked replies, prompt/completion/label (TRL's KTOTrainer)",
        section=METHOD,
        choices=METHODS,
    )
    beta: float = hyperparameter(
        0.1,
        "Beta",
        "DPO and KTO: how far the policy may move from the reference (higher = closer)",
        section=METHOD,
        above=0,
    )
    loss_type: str = hyperparameter("sigmoid", "DPO loss", "DPO: TRL's loss", section=METHOD, choices=LOSS_TYPES)
    init_adapter: str | None = hyperparameter(
        None,
        "Start from adapter",
        "continue this adapter (an SFT run, run or run/checkpoint-N) instead of a new LoRA; for DPO and KTO also "
        "the reference model",
        section=METHOD,
    )
    val_fraction: float = hyperparameter(
        0.1,
        "Validation fraction",
        "share of the training file held out for validation when there is no validation file (0 = none)",
        section=DATA,
        at_least=0,
        at_most=0.5,
    )
    max_length: int = hyperparameter(
        512,
        "Max length",
        "longest conversation in tokens; longer ones are dropped and reported",
        section=DATA,
        at_least=16,
    )
    packing: str = hyperparameter(
        "auto",
        "Packing",
        "pack short conversations into one row: auto (when that saves work), on, off",
        section=DATA,
        choices=PACKING,
    )
    seed: int = hyperparameter(
        42, "Seed", "seed for the split, data order, LoRA init and dropout", section=DATA, at_least=0, below=2**32
    )
    chat_template: str = hyperparameter(
        "chatml",
        "Chat template",
        "for a base model without one: the template to declare, chatml or a .jinja file (saved with the adapters)",
        section=DATA,
        form=False,
        why_not="it can name a file on the server",
    )
    learning_rate: float = hyperparameter(
        2e-4, "Learning rate", "peak learning rate of AdamW", section=OPTIMISER, above=0
    )
    max_steps: int = hyperparameter(
        0, "Max steps", "optimizer steps; 0 = as many as the epochs take", section=OPTIMISER, at_least=0
    )
    epochs: float = hyperparameter(
        1.0, "Epochs", "passes over the data (used when max steps is 0)", section=OPTIMISER, at_least=0
    )
    batch_size: int = hyperparameter(
        4, "Batch size", "sequences (packed rows) per device per step", section=OPTIMISER, at_least=1
    )
    grad_accum: int = hyperparameter(
        1, "Gradient accumulation", "batches per optimizer step", section=OPTIMISER, at_least=1
    )
    warmup: float = hyperparameter(
        0.05, "Warmup", "warmup steps, or a fraction below 1 of all steps", section=OPTIMISER, at_least=0
    )
    weight_decay: float = hyperparameter(0.0, "Weight decay", "AdamW weight decay", section=OPTIMISER, at_least=0)
    scheduler: str = hyperparameter(
        "linear", "Scheduler", "learning-rate schedule after warmup", section=OPTIMISER, choices=SCHEDULERS
    )
    gradient_checkpointing: bool = hyperparameter(
        True,
        "Gradient checkpointing",
        "recompute each layer's activations in the backward pass instead of keeping them: a fraction of the "
        "memory for about a third more compute (on by default, as in TRL)",
        section=OPTIMISER,
    )
    lora_r: int = hyperparameter(8, "LoRA rank", "rank of the LoRA update", section=LORA, at_least=1)
    lora_alpha: int = hyperparameter(
        16, "LoRA alpha", "LoRA scale numerator (scale = alpha / rank)", section=LORA, at_least=1
    )
    lora_dropout: float = hyperparameter(
        0.05, "LoRA dropout", "dropout on the LoRA input", section=LORA, at_least=0, below=1
    )
    target_modules: tuple[str, ...] = hyperparameter(
        ("all-linear",),
        "Target modules",
        "comma-separated module names to adapt (q_proj,v_proj), or all-linear: every linear layer but the head",
        section=LORA,
    )
    logging_steps: int = hyperparameter(
        1, "Logging steps", "log train loss, learning rate and tokens/s every N steps", section=LOGGING, at_least=1
    )
    eval_steps: int = hyperparameter(
        20, "Eval steps", "validation loss every N steps (and at the start and the end)", section=LOGGING, at_least=1
    )
    save_steps: int = hyperparameter(
        20, "Save steps", "write a checkpoint every N steps (and at the end)", section=LOGGING, at_least=1
    )
    patience: int = hyperparameter(
        0,
        "Patience",
        "stop after N evaluations without a lower validation loss; 0 = never stop early",
        section=LOGGING,
        at_least=0,
    )
    report_to: str = hyperparameter(
        "none",
        "Report to",
        "a tracker through transformers' integrations; its files go to <run>/tracking/",
        section=LOGGING,
        choices=REPORT_TO,
    )

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
        for f, spec in hparams.declared(JobConfig):
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue  # an optional one left out (init_adapter)
            hparams.check(spec, value)
            if spec.kind == "int":  # Gradio's numbers and JSON may arrive as floats: 4.0 is the whole number 4
                object.__setattr__(self, f.name, int(value))
        if self.max_steps == 0 and not self.epochs > 0:
            raise WorkbenchError(f"Epochs must be more than 0 when max steps is 0, not {self.epochs}.")
        if self.warmup >= 1 and self.warmup != int(self.warmup):
            raise WorkbenchError(f"Warmup must be a whole number of steps or a fraction below 1, not {self.warmup}.")

    def _check_choices(self) -> None:
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
        if self.votes is not None and self.method != "dpo":
            raise WorkbenchError("Training from votes is preference training: use the dpo method.")
        if self.likes is not None and self.method != "kto":
            raise WorkbenchError(
                "Training from likes and dislikes is unpaired preference training: use the kto method."
            )
        if self.method == "kto" and self.batch_size < 2:
            # TRL's KTO estimates its KL term from the other replies of a batch
            raise WorkbenchError(f"KTO needs a batch size of at least 2, not {self.batch_size}.")
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
