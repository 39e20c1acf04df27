"""The Gradio app: `build_demo()` lays out the tabs (Chat, Fine-tune, Arena, Leaderboard) over one `AppContext`.

Building the demo loads no model;
`app.py` (the Hugging Face Spaces entry) builds it at import and calls `serve(demo)` under `__main__`, which
starts the model loading in the background, launches the server and prints one line when the model is ready.
"""

from __future__ import annotations

import os

import gradio as gr

from workbench.config import Settings
from workbench.ui.arena_tab import build_arena_tab
from workbench.ui.chat import build_chat_tab, lane_width
from workbench.ui.context import AppContext
from workbench.ui.finetune import build_finetune_tab
from workbench.ui.leaderboard import build_leaderboard_tab
from workbench.ui.status import announce_when_ready, build_status_banner, status_route
from workbench.ui.verdict import build_verdict_section

TITLE = "Workbench"
MAX_UPLOAD = "20mb"  # dataset files; Gradio refuses bigger uploads before they reach a function
# Uploaded files are deleted from Gradio's cache after an hour (checked hourly); training keeps its own copy.
DELETE_CACHE = (3600, 3600)
# Gradio's queue looks for work every millisecond and for progress every 10 ms, idle or not: 6% of a core on the
# idle app (measured), and on a 2-core machine every wake-up takes a core from one of llama.cpp's two compute
# threads, which then wait for each other at the next step. Every 10 ms and 100 ms starts a queued event no later
# than a person can tell. (Gradio has no setting for these; its Queue reads the attributes on each loop.)
QUEUE_POLL_S = 0.01
PROGRESS_POLL_S = 0.1
# Gradio's queue also rebuilds a pandas summary of its last 10,000 events (for its /monitoring page) after every
# event by default: measured at ~25 ms of the app's CPU per chat on 2 busy cores, growing with the app's age.
# Its own variables (read when the queue is made) keep fewer events and summarise them every 1,000; set them
# to override.
GRADIO_ANALYTICS = {"GRADIO_ANALYTICS_MAX_EVENTS": "1000", "GRADIO_ANALYTICS_CACHE_FREQUENCY": "1000"}


def queue_options(settings: Settings) -> dict:
    """The `queue()` arguments: one worker per event by default (the chat's lane is set on its events), a bound
    on waiting requests, and no way around the queue: Gradio's REST routes (`/gradio_api/run/...`) would run an
    event directly, past the gate at the queue's door (Gradio closes them only on a Space by default)."""
    return {"default_concurrency_limit": 1, "max_size": settings.queue_size, "api_open": False}


def launch_options(demo: gr.Blocks) -> dict:
    """The `launch()` arguments that make the app safe to expose and serve: where it listens, whether it is shared
    (never unless GRADIO_SHARE says so), the upload limit, the worker threads, the `GET /status` route, the
    OpenAI-compatible `/v1` routes (`workbench.api`: the chat's router and reply limit), and the HTTP guard in front
    of Gradio (`workbench.ui.guard`: Host allowlist, body caps, uploads for the admin only)."""
    from starlette.middleware import Middleware

    from workbench.ui.guard import Guard

    ctx: AppContext = demo.workbench_context  # type: ignore[attr-defined]
    settings = ctx.settings
    # Each running generator holds one of Gradio's worker threads (40 by default): room for the chat's lane and
    # the rest of the app's events beside it.
    threads = max(40, lane_width(settings.slots) + 24)
    guard = Middleware(Guard, settings=settings, uploads=ctx.uploads_open)
    return {
        "server_name": settings.host,
        "share": settings.share,
        "max_file_size": MAX_UPLOAD,
        "max_threads": threads,
        "app_kwargs": {"middleware": [guard], "routes": [status_route(ctx), *_api(ctx)]},
    }


def _api(ctx: AppContext) -> list:
    from workbench.api.routes import api_routes

    return api_routes(ctx.settings, ctx.router(), ready=lambda: not ctx.loading())


def _calm_queue(demo: gr.Blocks) -> None:
    """Make Gradio's queue poll less often (see QUEUE_POLL_S); a Gradio without these attributes is left as is."""
    queue = getattr(demo, "_queue", None)
    if hasattr(queue, "sleep_when_free") and hasattr(queue, "progress_update_sleep_when_free"):
        queue.sleep_when_free = QUEUE_POLL_S
        queue.progress_update_sleep_when_free = PROGRESS_POLL_S


def _grace_on_close(demo: gr.Blocks) -> None:
    """Cancel the API requests still running SHUTDOWN_GRACE_S after Ctrl-C, as `workbench serve` does: Gradio makes
    its uvicorn config without a graceful-shutdown timeout (no launch() argument sets one), so its server would wait
    for every reply to end. uvicorn reads the timeout when it shuts down; a Gradio without a server is left as is."""
    from workbench.api.routes import SHUTDOWN_GRACE_S

    config = getattr(getattr(demo, "server", None), "config", None)
    if config is not None:
        config.timeout_graceful_shutdown = SHUTDOWN_GRACE_S


def mark_missing_matplotlib() -> bool:
    """Record matplotlib as absent in `sys.modules` where it is not installed; True when it did (an installed one
    is left alone).

    Gradio runs every event call, each streamed update of a reply included, inside a context that imports
    matplotlib twice (to pin its plotting backend). Where it is not installed (requirements.txt does not ask for
    it), each of those imports fails anew after searching every folder on sys.path: 9% of the app's Python CPU
    under 16 chats (py-spy). Once marked, each import fails at once, as it would anyway.
    """
    import importlib.util
    import sys

    if "matplotlib" in sys.modules or importlib.util.find_spec("matplotlib") is not None:
        return False
    sys.modules["matplotlib"] = None  # type: ignore[assignment]  # Python's own marker: "import fails at once"
    return True


def serve(demo: gr.Blocks) -> None:
    """Launch a demo made by `build_demo` as `python app.py` does, and block: the model starts loading first
    (the page is served meanwhile), the queue gets its bound and each visitor's share of it, and one line says
    when the model is ready. GRADIO_SERVER_PORT picks the port."""
    from workbench.ui.guard import gate_queue

    ctx: AppContext = demo.workbench_context  # type: ignore[attr-defined]
    ctx.warm_up()
    mark_missing_matplotlib()
    for name, value in GRADIO_ANALYTICS.items():
        os.environ.setdefault(name, value)
    demo.queue(**queue_options(ctx.settings))
    gate_queue(demo, ctx.settings)
    _calm_queue(demo)
    demo.launch(prevent_thread_lock=True, **launch_options(demo))
    _grace_on_close(demo)
    announce_when_ready(ctx, demo.local_url)
    demo.block_thread()


def _store_warning(settings: Settings, owner: bool = False) -> str:
    """The header's word on whether votes survive a restart: the dataset's id and the voter-id key are the owner's."""
    from workbench.store.sync import persistence_note, voter_note

    note = persistence_note(settings, owner=owner)
    if note.startswith("Votes, generations"):  # a working sync needs no word in the header
        return voter_note(settings) if owner else ""
    return note


def _store_warning_for(ctx: AppContext):
    def warning(request: gr.Request) -> str:
        return _store_warning(ctx.settings, ctx.visitor(request).owner)

    return warning


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
        status = build_status_banner(ctx)
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
                verdict = build_verdict_section(ctx, promote=not closed)  # child against parent, and promote
        demo.load(lambda: _mode_note(ctx), None, mode, api_visibility="private", show_progress="hidden")
        # Said again when a page opens: the sync to a dataset starts after the app is built, and may have failed.
        demo.load(_store_warning_for(ctx), None, store_warning, api_visibility="private")
        demo.load(**status)
        demo.load(**chat.on_load)
        demo.load(**arena.on_load)
        demo.load(**leaderboard.pick_args).then(**leaderboard.refresh_args, api_visibility="private")
        leaderboard_tab.select(**leaderboard.refresh_args, api_visibility="private")
        leaderboard_tab.select(**verdict.refresh_args)
        if finetune is not None:
            demo.load(**finetune.on_load)
    _queue_everything(demo)
    demo.workbench_context = ctx  # type: ignore[attr-defined]
    return demo


def _queue_everything(demo: gr.Blocks) -> None:
    """Put every event that runs server code in the queue, where the gate checks it (`workbench.ui.guard.
    gate_queue`): an event outside it is served by `/gradio_api/run/predict`, past the gate. Gradio makes some
    events of its own unqueued (gr.Examples' click); ours say nothing about the queue, so they are queued already."""
    for fn in demo.fns.values():
        if fn.fn is not None and not fn.queue:
            fn.queue = True
            fn.concurrency_limit = None  # a quick event of Gradio's own: it takes no lock, so none waits for another
