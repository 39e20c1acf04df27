"""Each Gradio input's declaration, read from the component itself: the bounds a person sees are the bounds checked.

    fields_of(fn, sizes)          # the gate's Field of each input of one event (workbench.gate.fields)
    declare(component, field)     # where a component cannot carry its bounds (a Number whose range the page
                                  # explains in its own sentence), the Field it is checked against instead

A Slider's minimum and maximum, a Number's minimum, maximum and precision, a Textbox's max_length, a Dropdown's
multiselect, a File's file_count: these set what the page offers, and `fields_of` turns them into the gate's
checks, which `workbench.ui.guard.gate_queue` runs on every request at the queue's door, before Gradio
preprocesses anything. A component of a kind with no rule here makes `fields_of` raise, so a new event cannot go
unchecked (tests/e2e/test_hostile.py builds every event's fields).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from workbench.gate import fields as f
from workbench.gate.sizes import Sizes

ATTRIBUTE = "workbench_field"


def declare(component: gr.components.Component, field: f.Field) -> gr.components.Component:
    """Check `component`'s values against `field` instead of its own properties; returns the component."""
    setattr(component, ATTRIBUTE, field)
    return component


def field_of(component: Any, sizes: Sizes) -> f.Field:
    """The gate's Field for one input component (`sizes`: the largest request any caller of this app may send,
    for the conversation)."""
    declared = getattr(component, ATTRIBUTE, None)
    if declared is not None:
        return declared
    label = str(getattr(component, "label", None) or type(component).__name__)
    if isinstance(component, gr.State):
        return f.ServerState(label)
    if isinstance(component, gr.Slider):
        return f.Number(label, optional=False, low=component.minimum, high=component.maximum)  # always has a value
    if isinstance(component, gr.Number):
        return f.Number(label, low=component.minimum, high=component.maximum, integer=component.precision == 0)
    if isinstance(component, gr.Textbox):
        if component.max_length is None:
            raise ValueError(f"the text box {label!r} declares no max_length")
        return f.Text(label, chars=component.max_length)
    if isinstance(component, gr.Checkbox):
        return f.Flag(label, optional=False)
    if isinstance(component, (gr.Dropdown, gr.Radio)):
        # The choices change per page (checkpoints, runs, pairs): type and length here, Gradio's preprocessing
        # checks membership in the page's current choices, and the function checks the caller's rights.
        return f.Choice(label, dynamic=True, multiple=bool(getattr(component, "multiselect", False)))
    if isinstance(component, gr.File):
        files = 1 if component.file_count == "single" else 16
        return f.Upload(label, folder=gr.utils.get_upload_folder(), files=files)
    if isinstance(component, gr.Chatbot):
        return f.Messages(label, messages=sizes.history_messages, chars=sizes.history_chars)
    if isinstance(component, gr.Dataset):
        return f.Index(label, count=len(component.samples or []))
    raise ValueError(f"no input rule for a {type(component).__name__} ({label!r}): add one to workbench/ui/fields.py")


def fields_of(fn: Any, sizes: Sizes) -> list[f.Field]:
    """The Field of each input of one Gradio event (a `BlockFunction`), in order."""
    return [field_of(component, sizes) for component in fn.inputs]
