"""Whether the app's model is ready: the `GET /status` route, the page's loading banner, the terminal's line.

    curl http://127.0.0.1:7860/status
    {"ready": false, "phase": "downloading SmolLM2-135M-Instruct.Q4_1.gguf (98 MB) from the Hugging Face hub ...",
     "model": "SmolLM2-135M-Instruct", "backend": null, "slots": 8, "error": null,
     "loaded": []}

The model loads in the background while the page is already served (`AppContext.warm_up`). Until it is ready
the page shows what the load is doing, refreshed every second, and says that a message can be sent: a chat sent
meanwhile waits for the load and then streams. Once it is ready the banner goes away (and its timer stops), and
the terminal prints one line with the URL.
"""

from __future__ import annotations

import sys
import threading

import gradio as gr

from workbench.ui.context import AppContext

REFRESH_S = 1.0


def status_route(ctx: AppContext):
    """A Starlette route for `GET /status`: `ctx.status()` as JSON (for scripts, load balancers, the benchmark)."""
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def status(_request) -> JSONResponse:
        return JSONResponse(ctx.status(), headers={"Cache-Control": "no-store"})

    return Route("/status", status, methods=["GET"])


def banner_text(status: dict) -> str:
    """What the page says about the model: its load's progress, its error, or nothing once it is ready."""
    if status["ready"]:
        return ""
    if status["error"]:
        return f"**The model could not be loaded:** {status['error']}"
    phase = status["phase"][:1].upper() + status["phase"][1:]
    return (
        f"**Loading {status['model'] or 'the model'}…** {phase}. You can send a message "
        "now: it is answered as soon as the model is ready."
    )


def build_status_banner(ctx: AppContext) -> dict:
    """The banner under the header (call inside the gr.Blocks); returns the `demo.load` arguments that fill it."""
    banner = gr.Markdown("", elem_id="model-status", visible=False)
    timer = gr.Timer(REFRESH_S, active=False)

    def refresh():
        status = ctx.status()
        text = banner_text(status)
        # Keep asking while loading; stop once there is an answer (ready, or an error to read).
        return gr.Markdown(text, visible=bool(text)), gr.Timer(active=not status["ready"] and not status["error"])

    args = {"fn": refresh, "outputs": [banner, timer], "api_visibility": "private", "show_progress": "hidden"}
    timer.tick(concurrency_limit=None, **args)
    return {**args, "concurrency_limit": None}


def announce_when_ready(ctx: AppContext, url: str) -> threading.Thread:
    """Print one line when the background load ends: the model is ready at `url`, or why it is not."""

    def wait() -> None:
        ready = ctx.wait_ready()
        status = ctx.status()
        if ready:
            line = f"* Model ready: {status['model']} on {status['backend']} ({status['slots']} slots) at {url}"
        else:
            line = f"* The model could not be loaded: {status['error'] or 'see the log above'}"
        print(line, file=sys.stderr if not ready else sys.stdout, flush=True)

    thread = threading.Thread(target=wait, name="workbench-announce", daemon=True)
    thread.start()
    return thread
