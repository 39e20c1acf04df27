"""The Gradio app: `build_demo()` lays out the tabs (Chat, Fine-tune, Arena) over one shared `AppContext`.

Building the demo loads no model;
`app.py` (the Hugging Face Spaces entry) builds it at import and launches it under `__main__`.
"""

from __future__ import annotations

import gradio as gr

from workbench.config import Settings
from workbench.ui.arena import build_arena_tab
from workbench.ui.chat import build_chat_tab
from workbench.ui.context import AppContext
from workbench.ui.finetune import build_finetune_tab

TITLE = "Workbench"


def _mode_note(ctx: AppContext) -> str:
    """A line under the header when the model is a base model (no chat template): the chat continues text."""
    from workbench.generation.modelinfo import model_info

    base = ctx.base()
    if base is None:
        return ""
    try:
        info = model_info(base, ctx.settings)
    except (OSError, ValueError):
        return ""
    if info.chat_template != "none":
        return ""
    return (
        "**Completion mode:** this is a base model without a chat template, so it continues your text instead "
        "of answering in a template it never saw. A LoRA adapter trained on chat data here chats in the template "
        "it was trained with."
    )


def build_demo(settings: Settings | None = None, ctx: AppContext | None = None) -> gr.Blocks:
    """The whole app as a gr.Blocks (not launched). Pass `ctx` to share state with the caller."""
    ctx = ctx or AppContext(settings)
    with gr.Blocks(title=TITLE) as demo:
        base = ctx.base()
        gr.Markdown(
            f"## {TITLE}\nChat with **{base.name if base else 'no model'}**, fine-tune it with LoRA, "
            "and compare its checkpoints.",
            elem_id="header",
        )
        mode = gr.Markdown("", elem_id="model-mode")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chat = build_chat_tab(ctx)
            with gr.Tab("Fine-tune", id="finetune"):
                finetune = build_finetune_tab(ctx)
            with gr.Tab("Arena", id="arena"):
                build_arena_tab(ctx)
        demo.load(lambda: _mode_note(ctx), None, mode, api_visibility="private", show_progress="hidden")
        demo.load(**chat.on_load)
        demo.load(**finetune.on_load)
    demo.workbench_context = ctx  # type: ignore[attr-defined]
    return demo
