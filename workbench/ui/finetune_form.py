"""The Fine-tune tab's hyperparameter form: one component per hyperparameter JobConfig declares, named for its field.

    with gr.Blocks():
        form = HyperparameterForm()
        form.place(["method"])                  # where the tab wants it: the method on top
        form.place(["val_fraction"])            # ... the held-out fraction with the validation file
        form.place_rest()                       # the others in declaration order, grouped by section
    button.click(fn, inputs_kwargs=form.components)   # the endpoint takes each one by its field name

The label, the info line, the choices and the bounds come from the declaration (`workbench.training.hparams`);
the values start from the demo recipe (`DEMO_SETTINGS`, what `make finetune-demo` trains). The elem_id of each
component is `ft-` and the field name with dashes (`ft-learning-rate`). No bounds are set on the components
themselves: Gradio would refuse an out-of-range number with its own error badge, while JobConfig answers with
a sentence in the tab's status line.
"""

from __future__ import annotations

from dataclasses import Field
from typing import Any

import gradio as gr

from workbench.gate.fields import Number
from workbench.training import hparams
from workbench.training.config import DEMO_SETTINGS, JobConfig
from workbench.training.hparams import Hyperparameter
from workbench.ui.fields import declare

PER_ROW = 3
TEXT_CHARS = 1_000  # a text hyperparameter (target modules, an adapter to start from): a short list of names


def form_hyperparameters() -> list[tuple[Field, Hyperparameter]]:
    """The hyperparameters the form offers (those not marked `form=False`), in declaration order."""
    return [(f, spec) for f, spec in hparams.declared(JobConfig) if spec.form]


def start_value(f: Field) -> Any:
    """The form's starting value of a hyperparameter: the demo recipe's, else JobConfig's default."""
    value = DEMO_SETTINGS.get(f.name, f.default)
    if isinstance(value, tuple):
        return ",".join(value)
    return "" if value is None else value


def elem_id(name: str) -> str:
    return "ft-" + name.replace("_", "-")


def component(f: Field, spec: Hyperparameter) -> gr.components.Component:
    """The component for one hyperparameter, in the current layout context."""
    value = start_value(f)
    common = {"label": spec.label, "info": spec.help, "elem_id": elem_id(f.name)}
    if spec.kind == "bool":
        return gr.Checkbox(value, **common)
    if spec.choices:
        kind = gr.Radio if len(spec.choices) <= 3 else gr.Dropdown
        return kind(list(spec.choices), value=value, **common)
    if spec.kind == "float" and spec.at_least is not None and spec.at_most is not None:
        return gr.Slider(spec.at_least, spec.at_most, value=value, step=0.01, **common)
    if spec.kind in ("int", "float"):
        number = gr.Number(value, precision=0 if spec.kind == "int" else None, min_width=110, **common)
        # The page's bounds stay unset (JobConfig says an out-of-range value in the tab's status line, where Gradio
        # would only badge the box); the gate still refuses anything outside them at the queue's door.
        low = spec.at_least if spec.at_least is not None else spec.above
        high = spec.at_most if spec.at_most is not None else spec.below
        return declare(number, Number(spec.label, low=low, high=high, integer=spec.kind == "int"))
    return gr.Textbox(value, max_length=TEXT_CHARS, **common)


class HyperparameterForm:
    """The form's components, created where the tab places them; `components` maps field name -> component."""

    def __init__(self) -> None:
        self.specs = dict((f.name, (f, spec)) for f, spec in form_hyperparameters())
        self.components: dict[str, gr.components.Component] = {}

    def place(self, names: list[str]) -> list[gr.components.Component]:
        """Create the components of `names` here, side by side."""
        with gr.Row():
            return [self._make(name) for name in names]

    def place_rest(self) -> None:
        """Create every component not placed yet, by section, PER_ROW to a row."""
        for section in hparams.SECTIONS:
            names = [n for n, (_, spec) in self.specs.items() if spec.section == section and n not in self.components]
            if not names:
                continue
            gr.Markdown(f"**{section}**")
            for start in range(0, len(names), PER_ROW):
                self.place(names[start : start + PER_ROW])

    def _make(self, name: str) -> gr.components.Component:
        if name in self.components:
            raise ValueError(f"{name} is on the form already")
        self.components[name] = component(*self.specs[name])
        return self.components[name]
