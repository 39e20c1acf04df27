"""The Leaderboard tab's "Child against parent" section: a checkpoint's verdict against its parent, and promote.

Pick an adapter and press Compare: the verdict (better, worse or not yet known), the evidence behind it and the
rule (`workbench.studio.lineage`). The owner may make it the Space's default, what a new visitor's chat starts on
and what the Arena's settings pairs use (`workbench.studio.promote`): refused with one sentence when the verdict
says worse unless "even if worse" is ticked; the adapter's folder gets its model card. Promote is an admin action:
the server checks the token (or the owner's own machine) through `AppContext.admin_refusal`, whatever the page shows.

API endpoints:
    compare_parent(checkpoint) -> report (Markdown)
    promote(checkpoint, force, token) -> status (one sentence)
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from workbench.errors import WorkbenchError
from workbench.registry import BASE_NAME
from workbench.ui.context import AppContext
from workbench.views.markup import plain_markdown

TOKEN_CHARS = 512  # the admin token box: longer than any token a person sets
INTRO = (
    "### Child against parent\n"
    "Is an adapter better than the checkpoint it was trained from (its run's previous checkpoint, the adapter its "
    "run started from, or the base model)? The verdict uses the Arena's votes first, then the suites' metrics, the "
    "like rate and LLM judges; the rule is shown with it."
)


def _said(exc: WorkbenchError) -> str:
    """The sentence as the page shows it: the gate's public sentence, Markdown escaped."""
    from workbench.gate.sentence import public_sentence

    return plain_markdown(public_sentence(exc))


def _names(ctx: AppContext) -> list[str]:
    from workbench.studio.lineage import children

    return children(ctx.settings, ctx.checkpoint_choices())  # every family's adapters, as the chat names them


def make_compare_fn(ctx: AppContext):
    """The function behind Compare and the compare_parent endpoint."""
    from workbench.studio.lineage import compare_parent
    from workbench.ui.stores import shared_store

    def compare(checkpoint: str | None) -> str:
        if not checkpoint:
            return "Pick an adapter to compare with its parent."
        try:
            return compare_parent(ctx.settings, shared_store(ctx.settings), checkpoint).markdown()
        except WorkbenchError as exc:
            return _said(exc)

    return compare


def make_promote_fn(ctx: AppContext):
    """The function behind Promote and the promote endpoint (admin only; refused when worse unless forced)."""
    from workbench.studio.promote import promote
    from workbench.ui.stores import shared_store

    def promote_fn(checkpoint: str | None, force: bool = False, token: str | None = None, request: gr.Request = None):
        refusal = ctx.admin_refusal(token or None, request)
        if refusal is not None:
            return plain_markdown(refusal)
        try:
            done = promote(ctx.settings, shared_store(ctx.settings), checkpoint or BASE_NAME, force=bool(force))
        except WorkbenchError as exc:
            return _said(exc)
        return plain_markdown(done.summary())

    return promote_fn


def _default_line(ctx: AppContext) -> str:
    from workbench.studio.promote import default_checkpoint

    return f"New visitors start on **{default_checkpoint(ctx.settings)}**."


def _promote_controls(ctx: AppContext, checkpoint: gr.Dropdown, default: gr.Markdown) -> gr.Markdown:
    with gr.Accordion("Promote (owner)", open=False, elem_id="verdict-promote-box"):
        with gr.Row():
            token = gr.Textbox(
                label="Admin token", type="password", elem_id="verdict-token", scale=3, max_length=TOKEN_CHARS
            )
            force = gr.Checkbox(False, label="Even if worse", elem_id="verdict-force", scale=1)
            button = gr.Button("Make it the default", size="sm", scale=1, elem_id="verdict-promote")
        status = gr.Markdown("", elem_id="verdict-status")
    done = button.click(make_promote_fn(ctx), [checkpoint, force, token], [status], api_name="promote")
    done.then(lambda: _default_line(ctx), None, [default], api_visibility="private")
    return status


def build_verdict_section(ctx: AppContext, promote: bool = True) -> SimpleNamespace:
    """Lay out the section and wire its events (inside the Leaderboard tab). Returns its components and
    `refresh_args` (fills the adapter list and the current default; for the tab's select event or `demo.load`).

    `promote=False` (a public app without an admin token, whose admin actions are closed) leaves the Promote
    controls and their event out altogether, as the Fine-tune tab is left out: nothing to call, even by index."""
    gr.Markdown(INTRO, elem_id="verdict-intro")
    with gr.Row():
        checkpoint = gr.Dropdown([], label="Adapter", elem_id="verdict-checkpoint", allow_custom_value=True, scale=4)
        compare = gr.Button("Compare with its parent", size="sm", scale=1, elem_id="verdict-compare")
    report = gr.Markdown("", elem_id="verdict-report")
    default = gr.Markdown("", elem_id="verdict-default")
    compare.click(make_compare_fn(ctx), [checkpoint], [report], api_name="compare_parent", concurrency_limit=2)
    status = _promote_controls(ctx, checkpoint, default) if promote else None

    def refresh(current: str | None):
        names = _names(ctx)
        return gr.update(choices=names, value=current if current in names else None), _default_line(ctx)

    refresh_args = {
        "fn": refresh,
        "inputs": [checkpoint],
        "outputs": [checkpoint, default],
        "api_visibility": "private",
        "show_progress": "hidden",
    }
    checkpoint.focus(**refresh_args)
    return SimpleNamespace(checkpoint=checkpoint, report=report, status=status, refresh_args=refresh_args)
