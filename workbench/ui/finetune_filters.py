"""The Fine-tune tab's filters of the store's feedback: one component per declared filter, named `vote_<field>`.

    inputs = filter_inputs()        # {"vote_checkpoints": Dropdown, "vote_rater_kind": Radio, "vote_since": ...}
    values = source_filters(source, {"vote_since": "2026-12-01", ...})   # the source's filters, checked

Each component comes from the filter's declaration (`workbench.training.filters.feedback_filter`): its help is the
label, a filter with choices is a radio, a switch a checkbox, a date a short text box; the checkpoints filter offers
the store's checkpoints (`finetune_actions.vote_checkpoint_choices`) and the minimum agreement is a slider. So the
tab, `workbench train`'s `--vote-*` flags and the job's command line read the same fields. A filter the chosen
source does not have (a vote pairs' filter for likes or corrections) is left out of its filters.
"""

from __future__ import annotations

from dataclasses import Field
from typing import Any

import gradio as gr

from workbench.training.filters import PREFIX, FeedbackFilters, declared

DATE_CHARS = 10  # YYYY-MM-DD
PER_ROW = 3


def _component(f: Field) -> gr.components.Component:
    meta, name = f.metadata["filter"], PREFIX + f.name
    common = {"label": meta["help"][0].upper() + meta["help"][1:], "elem_id": "ft-" + name.replace("_", "-")}
    if f.name == "checkpoints":  # its choices are the store's checkpoints, filled when the box is ticked
        return gr.Dropdown([], multiselect=True, allow_custom_value=True, **common)
    if f.name == "min_agreement":
        return gr.Slider(0.5, 1.0, value=f.default, step=0.05, **common)
    if isinstance(f.default, bool):
        return gr.Checkbox(f.default, **common)
    if meta["choices"]:
        return gr.Radio(list(meta["choices"]), value=f.default, **common)
    if meta["repeat"]:
        return gr.Dropdown([], multiselect=True, allow_custom_value=True, **common)
    return gr.Textbox(f.default or "", max_length=DATE_CHARS, placeholder=meta["metavar"], **common)


def filter_inputs() -> dict[str, gr.components.Component]:
    """The filter components, every source's first, then the vote pairs' own (created in the current layout)."""
    from workbench.training.votes import VoteFilters  # declares every filter: the votes' are a superset

    every = declared(VoteFilters)
    common = {f.name for f in declared(FeedbackFilters)}
    out: dict[str, gr.components.Component] = {}
    for shared in (True, False):
        if not shared:
            gr.Markdown("Votes only (dpo):")
        group = [f for f in every if (f.name in common) == shared]
        for start in range(0, len(group), PER_ROW):
            with gr.Row():
                for f in group[start : start + PER_ROW]:
                    out[PREFIX + f.name] = _component(f)
    return out


def source_filters(cls: type[FeedbackFilters], inputs: dict[str, Any]) -> FeedbackFilters:
    """The filters of `cls` from the tab's `vote_<field>` values (None and an empty date left out; the class
    checks each and answers in one sentence)."""
    names = {f.name for f in declared(cls)}
    values = {k.removeprefix(PREFIX): v for k, v in inputs.items() if k.startswith(PREFIX)}
    return cls(**{k: v for k, v in values.items() if k in names and v is not None and v != ""})
