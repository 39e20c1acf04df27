"""The API's Starlette routes, and the one place that decides who is asking (`_who`).

    routes = api_routes(settings, ctx.router(), ready=lambda: not ctx.loading())          # on the app
    Starlette(routes=api_routes(settings, Router(settings), ready=...))                     # `workbench serve`

Access: the owner (`Settings.is_owner`: on an app that listens on loopback, a caller on this machine) may use
every model; a bearer key from WORKBENCH_API_KEYS gives its holder the owner's rights. When keys are set, a key
that is not one of them is refused (401), or, where the API is open to visitors, gives a visitor's rights (OpenAI's
clients always send some key); when none are set, the key clients send is not read. Anyone else is a visitor:
refused (401) unless WORKBENCH_API_OPEN=1, then served with a visitor's sizes, reply rate, share of requests at
once and checkpoints (WORKBENCH_VISITOR_CHECKPOINTS), the same limits as the chat. Every body is read up to the
caller's cap before it is parsed; every refusal is OpenAI's error object with one sentence (`errors`).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from workbench.api.chat import chat_completions
from workbench.api.completions import completions
from workbench.api.errors import ApiError
from workbench.api.models import model_objects, resolve
from workbench.api.params import parse
from workbench.api.state import ApiState, Asker
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.router import Router
from workbench.generation.settings import GenerationSettings, Message

log = logging.getLogger("workbench.api")
# How long a stopping server (SIGTERM, Ctrl-C) lets requests still running finish before it cancels them, which
# frees their slots at the next token (uvicorn's timeout_graceful_shutdown; without one it waits for every reply
# to end). Under Gradio's 5 s wait for its server thread as it closes.
SHUTDOWN_GRACE_S = 3
Handler = Callable[[ApiState, Asker, dict[str, Any], Request], Awaitable[Response]]


def _who(request: Request, state: ApiState) -> Asker:
    """Who sent `request`, with their rights and limits (see the module docstring); ApiError 421 for a Host name
    this server does not answer to, 401 for a wrong key or a visitor where the API is closed to them.

    The one function that reads access and limits, through the gate the app and the dashboard use
    (`workbench.gate`): the same Visitor, sizes, checkpoint rule and per-address reply limit, counted together
    with the chat's in one process."""
    from workbench.access import header_values, host_allowed
    from workbench.gate.checkpoints import may_choose
    from workbench.gate.limits import limits_for
    from workbench.gate.sizes import OWNER_BODY, VISITOR_BODY, check_chat, sizes_for
    from workbench.gate.visitor import visitor

    settings = state.settings
    hosts = header_values(request.headers, "host")
    if len(hosts) != 1 or not host_allowed(hosts[0], settings.answers_to):
        raise ApiError(421, "This server does not answer to that host name.", code="misdirected_request")
    peer = request.client.host if request.client is not None else None
    gated = visitor(settings, peer, request.headers)
    who = gated.caller
    key = _bearer(request) if settings.api_keys else None  # with no keys set, the key clients send is not read
    valid = key is not None and any(hmac.compare_digest(key.encode(), k.encode()) for k in settings.api_keys)
    if key is not None and not valid and not settings.api_open:
        raise ApiError(401, "That API key is not one of this server's keys.", code="invalid_api_key")
    owner = valid or (key is None and gated.owner)
    if not owner and not settings.api_open:
        raise ApiError(
            401, "This server's API is closed to visitors: its owner can give you a key.", code="invalid_api_key"
        )
    sizes = sizes_for(settings, owner)
    limit = limits_for(settings).replies  # the app's own: a visitor's chats and API calls count together

    def check(messages: list[Message], generation: GenerationSettings) -> None:
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        history = messages[1 if system else 0 : -1]
        check_chat(sizes, messages[-1]["content"] if messages else "", system, history, generation)

    def take(n: int) -> None:
        if not owner:
            limit.take(who.address, n)

    cap = OWNER_BODY if owner else VISITOR_BODY
    return Asker(who.address, owner, cap, lambda c: may_choose(settings, owner, c), check, take, sizes.max_new_tokens)


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization") or ""
    scheme, _, key = value.partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


async def _body(request: Request, cap: int) -> Any:
    """The JSON body, read up to `cap` bytes (413 past it) and parsed (400 if it is not JSON)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise ApiError(413, f"The request is {int(declared):,} bytes; the limit here is {cap:,}.", code="too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise ApiError(413, f"The request is over {cap:,} bytes, the limit here.", code="too_large")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError):
        raise ApiError(400, "The request body is not valid JSON.", code="invalid_json") from None


def _error(exc: ApiError, state: ApiState) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {"Retry-After": "5"} if exc.status == 503 else {}
    return JSONResponse(exc.body(state.settings.api_keys), status_code=exc.status, headers=headers)


def _answer(state: ApiState, handler: Callable[[Request, Asker], Awaitable[Response]]) -> Callable:
    """A route function: who is asking, then `handler`; every refusal and failure in OpenAI's error shape."""

    async def route(request: Request) -> Response:
        try:
            return await handler(request, _who(request, state))
        except ApiError as exc:
            return _error(exc, state)
        except WorkbenchError as exc:
            return _error(ApiError.from_workbench(exc), state)
        except Exception:  # logged here, with no request body (it may hold anything); the client gets one sentence
            log.exception("An API request failed")
            return _error(ApiError(500, "The server failed to answer this request."), state)

    return route


def _generate(state: ApiState, handler: Handler, endpoint: str) -> Callable:
    async def run(request: Request, asker: Asker) -> Response:
        params = parse(await _body(request, asker.body_cap), endpoint)
        return await handler(state, asker, params, request)

    return _answer(state, run)


def api_routes(settings: Settings, router: Router, *, ready: Callable[[], bool]) -> list[Route]:
    """`GET /v1/models` (and `/v1/models/{id}`), `POST /v1/chat/completions`, `POST /v1/completions` over `router`.

    Args:
        settings: The server's settings (access, limits, keys).
        router: What generates (the app's own, so API requests share the slots with the chat).
        ready: Whether the main model is loaded; until it is, generation requests get 503.
    """
    state = ApiState(settings, router, ready)

    async def models(request: Request, asker: Asker) -> Response:
        data = await run_in_threadpool(model_objects, settings, asker.may_choose)
        return JSONResponse({"object": "list", "data": data})

    async def model(request: Request, asker: Asker) -> Response:
        name = request.path_params["model"]
        await run_in_threadpool(resolve, settings, name, asker.may_choose)
        return JSONResponse((await run_in_threadpool(model_objects, settings, asker.may_choose, name))[0])

    return [
        Route("/v1/models", _answer(state, models), methods=["GET"]),
        Route("/v1/models/{model:path}", _answer(state, model), methods=["GET"]),
        Route("/v1/chat/completions", _generate(state, chat_completions, "chat"), methods=["POST"]),
        Route("/v1/completions", _generate(state, completions, "completions"), methods=["POST"]),
    ]
