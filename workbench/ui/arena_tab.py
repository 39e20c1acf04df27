"""The Arena tab's layout: the pair kind, two chat windows side by side, the message box, the vote buttons and the
status, wired to the stored pairs and votes (`workbench/ui/arena.py`) and to the open battles
(`workbench/ui/arena_battle.py`). See `workbench/ui/arena.py` for what the tab does and its API endpoints.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from workbench.studio.battle import ONE_CHECKPOINT
from workbench.ui import arena_battle
from workbench.ui.arena import CHOICES, NOTICE, PAIR_KINDS, START, Arena, make_next_fn, make_vote_fn
from workbench.ui.context import AppContext


def mode_note(arena: Arena) -> str:
    """The line under the intro: why pairs differ in settings here (one checkpoint), else nothing."""
    return ONE_CHECKPOINT if arena.one_checkpoint() else ""


def build_arena_tab(ctx: AppContext) -> SimpleNamespace:
    """Lay out the Arena tab and wire its events (call inside a gr.Blocks / gr.Tab context).

    Returns the tab's components and `on_load`: the arguments for `demo.load` that say why pairs differ in
    settings when only one checkpoint exists (and pick that kind of pair).
    """
    arena = Arena(ctx)
    gr.Markdown(
        "Two anonymous answers to the same prompt, side by side. Pick the better one: your vote goes to the "
        "leaderboard, and the names are revealed after it.",
        elem_id="arena-intro",
    )
    mode = gr.Markdown("", elem_id="arena-mode")
    with gr.Row():
        # Named raters only where the owner runs the app, or signed in with Hugging Face on a Space (the Space's
        # README needs `hf_oauth: true`); otherwise every visitor votes anonymously.
        if ctx.settings.space:
            gr.LoginButton(value="Sign in to vote under your name", scale=2)
        rater = gr.Textbox(
            label="Your name (optional)",
            max_length=64,
            scale=3,
            elem_id="arena-rater",
            visible=ctx.settings.admin_without_token,
        )
        differ = gr.Radio(
            list(PAIR_KINDS),
            value="checkpoint",
            label="Pairs",
            info="Two checkpoints, or one checkpoint under two generation settings (which setting is better).",
            scale=2,
            elem_id="arena-differ",
        )
    with gr.Row(equal_height=True):
        left = gr.Chatbot(label="A", height=380, elem_id="arena-left", buttons=["copy"])
        right = gr.Chatbot(label="B", height=380, elem_id="arena-right", buttons=["copy"])
    with gr.Row():
        message = gr.Textbox(
            placeholder="Ask both anything, and press Enter",
            show_label=False,
            max_lines=6,
            scale=5,
            elem_id="arena-message",
            label="Prompt",  # not shown; it names the box in the gate's refusals
            max_length=ctx.sizes.message_chars,
        )
        send = gr.Button("Send", variant="primary", scale=1, min_width=80, elem_id="arena-send")
    with gr.Row():
        suggest = gr.Button("Suggest a prompt", size="sm", elem_id="arena-suggest")
        show = gr.Button("Show a pair", size="sm", elem_id="arena-next")
        new = gr.Button("New battle", size="sm", elem_id="arena-new")
    reason = gr.Textbox(label="Why? (optional)", max_length=2000, elem_id="arena-reason")
    with gr.Row():
        votes = [
            gr.Button(label, interactive=False, elem_id=f"arena-vote-{choice}", variant="secondary")
            for choice, label in CHOICES
        ]
    status = gr.Markdown(START, elem_id="arena-status")
    gr.Markdown(NOTICE, elem_id="arena-notice")
    judged = gr.State(None)  # the Battle or stored PairItem on screen: server-side, it holds the names
    show.click(
        make_next_fn(arena),
        [rater, differ],
        [judged, left, right, status, reason, *votes],  # the reason box is emptied for the new pair
        api_name="arena_next",
        concurrency_limit=1,  # making a pair runs the model; one at a time
    )
    for button, (choice, _) in zip(votes, CHOICES, strict=True):
        button.click(
            make_vote_fn(arena, choice),
            [judged, reason, rater],
            [judged, status, *votes],
            api_name=f"vote_{choice}",
            concurrency_limit=None,
        )
    page = SimpleNamespace(
        judged=judged, differ=differ, rater=rater, left=left, right=right, message=message, send=send,
        suggest=suggest, new=new, reason=reason, votes=votes, status=status, mode=mode,
    )  # fmt: skip
    arena_battle.wire(arena, page)

    def load(kind: str):
        one = arena.one_checkpoint()
        return mode_note(arena), "settings" if one and kind == "checkpoint" else kind

    on_load = {"fn": load, "inputs": [differ], "outputs": [mode, differ], "api_visibility": "private"}
    return SimpleNamespace(
        arena=arena, rater=rater, show=show, left=left, right=right, buttons=votes, status=status, on_load=on_load
    )
