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
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chat = build_chat_tab(ctx)
            with gr.Tab("Fine-tune", id="finetune"):
                finetune = build_finetune_tab(ctx)
            with gr.Tab("Arena", id="arena"):
                build_arena_tab(ctx)
        demo.load(**chat.on_load)
        demo.load(**finetune.on_load)
    demo.workbench_context = ctx  # type: ignore[attr-defined]
    return demo
