"""The Chat tab's tuning aids: a preset picker (and a checkpoint's saved setting loaded when it is chosen), and an
optional token view of the last reply (each token coloured by its probability, alternatives on hover).

Used by workbench/ui/chat.py in two steps, layout then wiring, because the wiring needs components that the tab
creates later:

    preset = preset_picker(ctx)                      # in the settings column
    tokens = token_view_layout()                     # under the conversation
    wire_presets(ctx, preset, checkpoint, sliders, notice)  # sliders: a namespace of the SLIDERS components
    wire_token_view(ctx, tokens, chatbot, system, checkpoint, sliders, lane)

The token view reads the reply with one teacher-forced pass of the transformers reference (loaded on first use);
"Show what changed" reads it under the chosen checkpoint and the one to compare with (two passes, the adapter
switched on and off on one model) and colours each token by how far its probability moved. The events are private
(not API endpoints); the gate checks their inputs' types and sizes, and they check the conversation's sizes, the
checkpoints the caller may choose and the reply limit themselves.
"""

from __future__ import annotations

import html
from types import SimpleNamespace
from typing import Any

import gradio as gr

from workbench.errors import WorkbenchError
from workbench.gate.sizes import check_chat, check_reply
from workbench.generation import presets
from workbench.generation.settings import GenerationSettings, conversation, message_text, plain_history
from workbench.registry import BASE_NAME
from workbench.ui.context import AppContext, user_error
from workbench.ui.notice import NO_NOTICE, notice_html

SLIDERS = ("temperature", "max_new_tokens", "top_p", "top_k", "min_p", "repetition_penalty", "adapter_strength", "stop")


def preset_picker(ctx: AppContext) -> gr.Dropdown:
    """The preset dropdown (shipped presets and the user's own, as on disk when the page was built)."""
    try:
        names = list(presets.presets(ctx.settings))
    except WorkbenchError:  # a broken presets.json must not take the chat down: the shipped ones still work
        names = list(presets.SHIPPED)
    return gr.Dropdown(
        names,
        value=presets.DEFAULT_PRESET,  # the sliders start at GenerationSettings(), which is this preset
        label="Preset",
        elem_id="preset",
        info="Fills the settings below; a checkpoint saved with its own setting brings it when chosen.",
    )


def _values(gen: GenerationSettings) -> list[Any]:
    return [getattr(gen, name) for name in SLIDERS[:-1]] + ["\n".join(gen.stop)]


def wire_presets(
    ctx: AppContext, preset: gr.Dropdown, checkpoint: gr.Dropdown, sliders: SimpleNamespace, notice: gr.HTML
) -> None:
    """Choosing a preset fills the sliders (or says in the notice why it cannot); choosing a checkpoint with a
    saved setting fills them with it."""
    outputs = [getattr(sliders, name) for name in SLIDERS]

    def apply_preset(name: str | None):
        if not name:
            return [gr.skip()] * (len(outputs) + 1)
        try:
            return [*_values(presets.preset(ctx.settings, name)), NO_NOTICE]
        except WorkbenchError as exc:  # e.g. presets.json was removed after the page was built
            return [gr.skip()] * len(outputs) + [notice_html(user_error(exc))]

    def apply_checkpoint(name: str | None):
        try:
            saved = presets.checkpoint_default(ctx.settings, name or BASE_NAME)
        except WorkbenchError:  # an unknown name: the chat itself answers it with its sentence
            saved = None
        if saved is None:
            return [gr.skip()] * (len(outputs) + 1)
        return [*_values(saved), gr.update(value=None)]

    quick = {"concurrency_limit": None, "api_visibility": "private"}  # queued (the gate's door), no lock taken
    preset.change(apply_preset, [preset], [*outputs, notice], **quick)
    checkpoint.change(apply_checkpoint, [checkpoint], [*outputs, preset], **quick)


def token_view_layout() -> SimpleNamespace:
    """The collapsed token view: colour choice, a button, the checkpoint to compare with and its button, and the
    coloured reply."""
    with gr.Accordion("Token probabilities of the last reply", open=False, elem_id="token-view"):
        with gr.Row():
            colour = gr.Radio(
                ["probability", "entropy"], value="probability", label="Colour by", elem_id="token-colour"
            )
            show = gr.Button("Show token probabilities", elem_id="show-tokens", size="sm")
        with gr.Row():
            # Filled with the caller's checkpoints when opened; a custom value is the function's to check, as the
            # chat's own selector does.
            against = gr.Dropdown(
                [BASE_NAME],
                value=BASE_NAME,
                label="Compare with",
                elem_id="token-against",
                info="What did the chosen checkpoint change? Each token's probability under both, the shift coloured.",
                allow_custom_value=True,
            )
            shift = gr.Button("Show what changed", elem_id="show-shift", size="sm")
        view = gr.HTML("", elem_id="token-html")
    return SimpleNamespace(colour=colour, show=show, against=against, shift=shift, view=view)


def last_exchange(history: Any, system_prompt: str | None) -> tuple[list[dict[str, str]], str]:
    """(the messages that led to the last reply, that reply) from a chat history; one sentence when there is none."""
    turns = plain_history(history)
    if not turns or turns[-1]["role"] != "assistant" or not turns[-1]["content"].strip():
        raise WorkbenchError("There is no reply to read yet: send a message first.")
    users = [i for i, t in enumerate(turns[:-1]) if t["role"] == "user"]
    if not users:
        raise WorkbenchError("The last reply has no message before it.")
    last = users[-1]
    return conversation(turns[:last], turns[last]["content"], system_prompt), turns[-1]["content"]


def wire_token_view(
    ctx: AppContext, tokens: SimpleNamespace, chatbot, system, checkpoint, sliders: SimpleNamespace, lane: dict
) -> None:
    """The button reads the last reply's tokens under the current temperature, top-p and top-k, the checkpoint's
    adapter at the current strength (`sliders`: the components of SLIDERS)."""
    from workbench.generation.tokenprobs import token_probabilities
    from workbench.views.tokenview import summary, token_html

    def show(history, system_prompt, name, t, p, k, strength, colour_by, request: gr.Request = None):
        try:
            who = ctx.visitor(request)
            settings = GenerationSettings(temperature=t, top_p=p, top_k=k, max_new_tokens=1, adapter_strength=strength)
            messages, reply = _read_last_reply(ctx, who, history, system_prompt, [name], 1)
            rows = token_probabilities(
                ctx.router(),
                messages,
                reply,
                name or BASE_NAME,
                temperature=settings.temperature,
                top_p=settings.top_p,
                top_k=settings.top_k,
                strength=settings.adapter_strength,
            )
            return token_html(rows, colour_by) + f"<p style='font-size:0.85em'>{html.escape(summary(rows))}</p>"
        except WorkbenchError as exc:  # said where the tokens would be (workbench/ui/notice.py: not a raise)
            return notice_html(user_error(exc))

    read = [sliders.temperature, sliders.top_p, sliders.top_k, sliders.adapter_strength]
    inputs = [chatbot, system, checkpoint, *read, tokens.colour]
    tokens.show.click(show, inputs, [tokens.view], api_visibility="private", **lane)
    wire_token_shift(ctx, tokens, chatbot, system, checkpoint, lane)


def _read_last_reply(ctx: AppContext, who, history, system_prompt, checkpoints: list, passes: int):
    """(messages, reply) of the last exchange after the gate's checks of the token view: the conversation's and
    the reply's sizes as sent, the checkpoints the caller may choose, and `passes` forward passes counted like
    replies."""
    # A forward pass over all of it: the whole conversation as sent is measured, the reply included (it comes back
    # from the browser like the rest), before the tokenizer or the model's lock sees any of it.
    check_chat(who.sizes, "", system_prompt, history, GenerationSettings(max_new_tokens=1))
    messages, reply = last_exchange(history, system_prompt)
    check_reply(who.sizes, reply)
    for name in checkpoints:
        ctx.check_checkpoint(who, name)
    ctx.take_reply(who, passes)  # as costly as a reply each: counted like them
    return messages, message_text(reply)


def wire_token_shift(ctx: AppContext, tokens: SimpleNamespace, chatbot, system, checkpoint, lane: dict) -> None:
    """The last reply read under the chosen checkpoint and the one to compare with: each token's probability under
    both, coloured by the shift (workbench/views/tokenshift.py)."""
    from workbench.generation.tokenshift import check_pair, token_shift
    from workbench.views.tokenshift import shift_html, shift_summary

    def show_shift(history, system_prompt, name, against, request: gr.Request = None):
        try:
            who = ctx.visitor(request)
            before, after = check_pair(ctx.router(), against, name)  # one sentence before anything is counted
            messages, reply = _read_last_reply(ctx, who, history, system_prompt, [before, after], 2)
            rows = token_shift(ctx.router(), messages, reply, before, after)
            summary = html.escape(shift_summary(rows, before, after))
            return shift_html(rows, before, after) + f"<p style='font-size:0.85em'>{summary}</p>"
        except WorkbenchError as exc:  # said where the tokens would be (workbench/ui/notice.py: not a raise)
            return notice_html(user_error(exc))

    def choices(request: gr.Request = None):
        return gr.update(choices=ctx.choices_for(ctx.visitor(request)))

    inputs = [chatbot, system, checkpoint, tokens.against]
    tokens.shift.click(show_shift, inputs, [tokens.view], api_visibility="private", **lane)
    tokens.against.focus(choices, None, [tokens.against], concurrency_limit=None, api_visibility="private")
