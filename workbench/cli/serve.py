"""`python -m workbench serve`: the OpenAI-compatible API alone (no UI), on uvicorn.

    python -m workbench serve                            # http://127.0.0.1:8000/v1, open to this machine
    python -m workbench serve --host 0.0.0.0 --port 9000 # others need a key from WORKBENCH_API_KEYS
                                                         # (or WORKBENCH_API_OPEN=1 for visitors' limits)

The same routes as the app's `/v1` (`workbench.api`), over the same Router and llama.cpp slots, and `GET /status`.
The model loads in the background as the server starts; generation requests get 503 until it is ready. Access
follows the app's rules with this command's `--host` as where it listens. SIGTERM or Ctrl-C stops it after at
most `SHUTDOWN_GRACE_S`: requests still running then are cancelled. docs/api.md shows clients.
"""

from __future__ import annotations

import argparse
import sys
import threading

from workbench.cli.common import add_model_flags, settings_from


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("serve", help="serve the OpenAI-compatible API (/v1) without the UI")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    add_model_flags(p)
    return p


def build_app(settings, router=None):
    """The Starlette app: the API routes and `GET /status` over a Router, and the thread loading the main model."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from workbench.api.routes import api_routes
    from workbench.generation.router import Router

    router = router or Router(settings)
    state: dict = {"ready": False, "error": None}

    def load() -> None:
        try:
            router.main()
            state["ready"] = True
            router.preload()  # the other families the memory policy loads at start
        except Exception as exc:  # said by /status and on stderr; requests keep getting 503
            state["error"] = str(exc)
            print(f"error: the model could not be loaded: {exc}", file=sys.stderr)

    async def status(_request) -> JSONResponse:
        busy = getattr(router.main().backend, "busy", None) if state["ready"] else None
        error = state["error"] and "the model could not be loaded"
        return JSONResponse({"ready": state["ready"], "error": error, "busy_slots": busy() if busy else None})

    routes = [Route("/status", status, methods=["GET"]), *api_routes(settings, router, ready=lambda: state["ready"])]
    return Starlette(routes=routes), threading.Thread(target=load, daemon=True, name="workbench-load")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    import uvicorn

    from workbench.api.routes import SHUTDOWN_GRACE_S
    from workbench.config import address

    host = address("--host", args.host)
    settings = dataclasses.replace(settings_from(args), host=host)  # where it listens decides who is the owner
    app, loading = build_app(settings)
    loading.start()
    print(f"Serving the API on http://{host}:{args.port}/v1 (the model is loading)", file=sys.stderr)
    uvicorn.run(
        app,
        host=host,
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,  # then requests still running are cancelled
    )
    return 0
