"""How a training hyperparameter is declared: once, as a `JobConfig` field with its help, bounds and choices.

    learning_rate: float = hyperparameter(2e-4, "Learning rate", "peak learning rate", section=OPTIMISER, above=0)

Everything else reads that one declaration: `JobConfig` checks its values with it (`check`, one sentence per bad
value), `workbench train` has a flag per hyperparameter (`flag`: `--learning-rate`), the job's command line is
written from it (`argv`), the Fine-tune tab builds one component per hyperparameter, named for its field, and
passes it to the "train" endpoint by that name, and `workbench docs` writes the table in docs/reference.md.
Torch-free and UI-free: the CLI, the tab and the docs import it.
"""

from __future__ import annotations

import math
from dataclasses import Field, dataclass, field, fields
from typing import Any

from workbench.errors import WorkbenchError

# Sections, in the order the CLI's help, the form and the reference show them.
DATA = "Data"
METHOD = "Method"
OPTIMISER = "Optimiser"
LORA = "LoRA"
LOGGING = "Logging and checkpoints"
SECTIONS = (METHOD, DATA, OPTIMISER, LORA, LOGGING)


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter's declaration (the metadata of its JobConfig field).

    Attributes:
        label: What a person calls it: the form's label and the subject of its error sentences.
        help: One line: what it does and what its values mean (CLI help, the form's info line, the reference).
        section: One of SECTIONS.
        kind: "int", "float", "bool", "text" (a string, or None when optional) or "list" (comma-separated names).
        above, at_least, below, at_most: Bounds, checked by `check` (and shown by the form and the reference).
        choices: The allowed values of a text hyperparameter.
        form: Whether the Fine-tune tab offers it (False: the CLI only, with the reason in `why_not`).
        why_not: Why a hyperparameter is not on the form.
    """

    label: str
    help: str
    section: str
    kind: str
    above: float | None = None
    at_least: float | None = None
    below: float | None = None
    at_most: float | None = None
    choices: tuple[str, ...] = ()
    form: bool = True
    why_not: str = ""

    def bounds_text(self) -> str:
        """The bounds in words ("more than 0", "0 to 0.5", "one of auto, on, off"), or ""."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        low = f"more than {_num(self.above)}" if self.above is not None else None
        if self.at_least is not None:
            low = f"at least {_num(self.at_least)}"
        high = f"below {_num(self.below)}" if self.below is not None else None
        if self.at_most is not None:
            high = f"at most {_num(self.at_most)}"
        if self.at_least is not None and self.at_most is not None:
            return f"{_num(self.at_least)} to {_num(self.at_most)}"
        return ", ".join(p for p in (low, high) if p)


def hyperparameter(
    default: Any,
    label: str,
    help: str,
    *,
    section: str,
    kind: str | None = None,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
    choices: tuple[str, ...] = (),
    form: bool = True,
    why_not: str = "",
) -> Any:
    """A JobConfig field declared as a hyperparameter (see the module docstring); `kind` defaults from `default`."""
    if section not in SECTIONS:
        raise ValueError(f"unknown section {section!r}")
    kind = kind or _kind_of(default)
    spec = Hyperparameter(label, help, section, kind, above, at_least, below, at_most, choices, form, why_not)
    return field(default=default, metadata={"hyperparameter": spec})


def _kind_of(default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, tuple):
        return "list"
    return "text"


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def declared(cls: type) -> list[tuple[Field, Hyperparameter]]:
    """The hyperparameters of a dataclass (JobConfig), in declaration order."""
    return [(f, f.metadata["hyperparameter"]) for f in fields(cls) if "hyperparameter" in f.metadata]


def flag(name: str) -> str:
    """The CLI flag of a hyperparameter field: `learning_rate` -> `--learning-rate`."""
    return "--" + name.replace("_", "-")


def check(spec: Hyperparameter, value: Any) -> None:
    """Raise WorkbenchError with one sentence when `value` is of the wrong type or outside the bounds."""
    label = spec.label
    if spec.kind in ("int", "float"):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if spec.kind == "int" and not (number and float(value).is_integer()):
            raise WorkbenchError(f"{label} must be a whole number, not {value!r}.")
        if not number or math.isnan(value):
            raise WorkbenchError(f"{label} must be a number, not {value!r}.")
        if spec.above is not None and not value > spec.above:
            raise WorkbenchError(f"{label} must be more than {_num(spec.above)}, not {value}.")
        if spec.at_least is not None and not value >= spec.at_least:
            raise WorkbenchError(f"{label} must be at least {_num(spec.at_least)}, not {value}.")
        if spec.below is not None and not value < spec.below:
            raise WorkbenchError(f"{label} must be below {_num(spec.below)}, not {value}.")
        if spec.at_most is not None and not value <= spec.at_most:
            raise WorkbenchError(f"{label} must be at most {_num(spec.at_most)}, not {value}.")
    elif spec.kind == "bool" and not isinstance(value, bool):
        raise WorkbenchError(f"{label} must be true or false, not {value!r}.")
    elif spec.choices and value not in spec.choices:
        raise WorkbenchError(f"{label} must be one of {', '.join(spec.choices)}, not {value!r}.")


def argv(values: dict[str, Any], specs: list[tuple[Field, Hyperparameter]]) -> list[str]:
    """The `workbench train` flags that give these hyperparameter values (None is left out; a bool is `--x` or
    `--no-x`, since a default may be either)."""
    out: list[str] = []
    for f, spec in specs:
        value = values.get(f.name)
        if value is None:
            continue
        if spec.kind == "bool":
            out.append(flag(f.name) if value else "--no-" + flag(f.name)[2:])
        else:
            out += [flag(f.name), ",".join(value) if isinstance(value, tuple | list) else str(value)]
    return out


def parse_list(text: Any) -> tuple[str, ...]:
    """A comma-separated list of names (a form's or a flag's text) as a tuple; a tuple or list is taken as is."""
    items = text if isinstance(text, tuple | list) else str(text or "").split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())
