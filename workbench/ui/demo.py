"""The Gradio app: `build_demo()` lays out the tabs (Chat, Fine-tune, Arena, Leaderboard) over one `AppContext`.

Building the demo loads no model;
`app.py` (the Hugging Face Spaces entry) builds it at import and launches it under `__main__`.
"""

from __future__ import annotations

import gradio as gr

from workbench.config import Settings
from workbench.ui.arena_tab import build_arena_tab
from workbench.ui.chat import build_chat_tab
from workbench.ui.context import AppContext
from workbench.ui.finetune import build_finetune_tab
from workbench.ui.leaderboard import build_leaderboard_tab

TITLE = "Workbench"
MAX_UPLOAD = "20mb"  # dataset files; Gradio refuses bigger uploads before they reach a function
# Uploaded files are deleted from Gradio's cache after an hour (checked hourly); training keeps its own copy.
DELETE_CACHE = (3600, 3600)


def launch_options(demo: gr.Blocks) -> dict:
    """The `launch()` arguments that make the app safe to expose: where it listens, whether it is shared (never
    unless GRADIO_SHARE says so), the upload limit, and the HTTP guard in front of Gradio (`workbench.ui.guard`:
    Host allowlist, body caps, uploads for the admin only)."""
    from starlette.middleware import Middleware

    from workbench.ui.guard import Guard

    ctx: AppContext = demo.workbench_context  # type: ignore[attr-defined]
    settings = ctx.settings
    guard = Middleware(Guard, settings=settings, uploads=ctx.uploads_open)
    return {
        "server_name": settings.host,
        "share": settings.share,
        "max_file_size": MAX_UPLOAD,
        "app_kwargs": {"middleware": [guard]},
    }


def serve(demo: gr.Blocks, port: int) -> None:
    """Queue and launch the app as `python app.py` does: the queue's bound, each visitor's share of it, the guard."""
    from workbench.ui.guard import share_queue

    settings = demo.workbench_context.settings  # type: ignore[attr-defined]
    demo.queue(default_concurrency_limit=1, max_size=settings.queue_size)
    share_queue(demo, settings)
    demo.launch(server_port=port, **launch_options(demo))


def _store_warning(settings: Settings) -> str:
    from workbench.store.sync import persistence_note

    note = persistence_note(settings)
    return "" if note.startswith("Votes, generations") else note  # a working sync needs no word in the header


def _closed_finetune_note() -> None:
    gr.Markdown(
        "Fine-tuning is for the operator of this app, and admin actions are closed on this public server. "
        "To train here, set WORKBENCH_ADMIN_TOKEN (then enter it on this tab), or run the app on 127.0.0.1.",
        elem_id="ft-closed",
    )


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
    settings = ctx.settings
    with gr.Blocks(title=TITLE, delete_cache=DELETE_CACHE) as demo:
        base = ctx.base()
        gr.Markdown(
            f"## {TITLE}\nChat with **{base.name if base else 'no model'}**, fine-tune it with LoRA, "
            "and compare its checkpoints.",
            elem_id="header",
        )
        mode = gr.Markdown("", elem_id="model-mode")
        store_warning = gr.Markdown(_store_warning(settings), elem_id="store-warning")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chat = build_chat_tab(ctx)
            with gr.Tab("Fine-tune", id="finetune"):
                # Closed with no way to open it: the tab's events are not even created, so nothing can call them.
                closed = settings.admin_token is None and not settings.admin_without_token
                ctx.uploads_open = not closed  # no upload component exists otherwise: the guard refuses uploads
                finetune = None if closed else build_finetune_tab(ctx)
                if closed:
                    _closed_finetune_note()
            with gr.Tab("Arena", id="arena"):
                arena = build_arena_tab(ctx)
            with gr.Tab("Leaderboard", id="leaderboard") as leaderboard_tab:
                leaderboard = build_leaderboard_tab(ctx)
        demo.load(lambda: _mode_note(ctx), None, mode, api_visibility="private", show_progress="hidden")
        # Said again when a page opens: the sync to a dataset starts after the app is built, and may have failed.
        demo.load(lambda: _store_warning(settings), None, store_warning, api_visibility="private")
        demo.load(**chat.on_load)
        demo.load(**arena.on_load)
        demo.load(**leaderboard.pick_args).then(**leaderboard.refresh_args, api_visibility="private")
        leaderboard_tab.select(**leaderboard.refresh_args, api_visibility="private")
        if finetune is not None:
            demo.load(**finetune.on_load)
    demo.workbench_context = ctx  # type: ignore[attr-defined]
    return demo
