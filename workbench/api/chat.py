"""`POST /v1/chat/completions`: messages -> the checkpoint's reply in its chat template, whole or streamed.

Messages take text content (a string, or a list of `{"type": "text", "text": ...}` parts); `developer` is
OpenAI's newer name for the system role. `response_format` `json_object` or `json_schema` constrains the reply with
llama.cpp's grammar for the schema; `logprobs`/`top_logprobs` come from llama.cpp as it samples (both refused with
one sentence on a backend that lacks them). `n` choices start together on the slots.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from workbench.api.errors import ApiError
from workbench.api.models import resolve
from workbench.api.state import FINISH, ApiState, Asker, envelope, generation, seeded, usage
from workbench.api.streams import admit, collect_all, started, stream_reply
from workbench.errors import WorkbenchError
from workbench.generation.backends.base import Extras
from workbench.generation.settings import Message, check_messages
from workbench.generation.streaming import Reply

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def chat_messages(raw: Any) -> list[Message]:
    """OpenAI's messages as Workbench's plain {"role", "content"} messages; ApiError naming what is wrong."""
    if not isinstance(raw, list):
        raise ApiError(400, "messages must be a list of messages.", param="messages", code="invalid_type")
    clean: list[Message] = []
    for i, message in enumerate(raw):
        role = message.get("role") if isinstance(message, Mapping) else None
        if role not in ROLES:
            raise ApiError(
                400,
                f"Message {i + 1} must have a role of system, user or assistant.",
                param="messages",
                code="invalid_value",
            )
        clean.append({"role": ROLES[role], "content": _text(message.get("content"), i)})
    try:
        return check_messages(clean)
    except WorkbenchError as exc:
        raise ApiError(400, str(exc), param="messages", code="invalid_value") from None


def _text(content: Any, i: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list) and all(isinstance(p, Mapping) for p in content):
        kinds = {p.get("type") for p in content}
        if kinds <= {"text"} and all(isinstance(p.get("text"), str) for p in content):
            return "".join(p["text"] for p in content)
        other = next((k for k in kinds if k != "text"), "text")
        raise ApiError(
            400, f"Message {i + 1} has a {str(other)[:40]!r} part; these models read text parts only.", param="messages"
        )
    raise ApiError(400, f"Message {i + 1} must have text content.", param="messages", code="invalid_type")


def schema_of(response_format: Mapping[str, Any] | None) -> dict | None:
    """The JSON schema a `response_format` asks the reply to follow; None for free text."""
    if response_format is None:
        return None
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, Mapping):
            raise ApiError(
                400, "response_format.json_schema.schema must be a JSON schema object.", param="response_format"
            )
        return dict(schema)
    raise ApiError(400, "response_format type must be text, json_object or json_schema.", param="response_format")


def _logprobs(entries: list[dict]) -> dict[str, Any]:
    """llama.cpp's token entries in the chat API's shape."""

    def one(t: dict) -> dict[str, Any]:
        return {"token": t["token"], "logprob": t["logprob"], "bytes": list(t["token"].encode())}

    return {"content": [{**one(t), "top_logprobs": [one(a) for a in t["top_logprobs"]]} for t in entries]}


async def chat_completions(state: ApiState, asker: Asker, params: dict[str, Any], request: Request) -> Response:
    messages = chat_messages(params["messages"])
    checkpoint = resolve(state.settings, params["model"], asker.may_choose)
    max_tokens = params.get("max_completion_tokens", params.get("max_tokens", min(asker.max_new_tokens, 1024)))
    settings = generation(params, max_tokens)
    wants_logprobs = params.get("logprobs", False)
    if "top_logprobs" in params and not wants_logprobs:
        raise ApiError(400, "top_logprobs needs logprobs: true.", param="top_logprobs")
    extras = Extras(params.get("top_logprobs", 0) if wants_logprobs else None, schema_of(params.get("response_format")))
    n, stream = params.get("n", 1), params.get("stream", False)
    if stream and n > 1:
        raise ApiError(400, "A streamed request has one choice: leave n at 1.", param="n")
    include_usage = bool((params.get("stream_options") or {}).get("include_usage"))
    keep = state.keep(asker, request.headers)
    admit(state, asker, [messages], settings, n)
    router, model = state.router_for(asker), params["model"]
    ident = f"chatcmpl-{uuid.uuid4().hex}"

    def start(i: int) -> Callable[[], Reply]:
        return lambda: router.stream(messages, seeded(settings, i), checkpoint, extras=extras)

    def stored(text: str, stats: Any) -> int | None:
        meta = {"user": params["user"]} if "user" in params else {}
        return state.store_generation(checkpoint, messages, text, stats, meta) if keep else None

    def chunk(text: str | None, finish: str | None, entries: list[dict]) -> dict[str, Any]:
        delta = {"role": "assistant", "content": ""} if text is None else {"content": text} if text else {}
        choice = {"index": 0, "delta": delta, "logprobs": _logprobs(entries) if wants_logprobs else None}
        return {**envelope("chat.completion.chunk", model, ident), "choices": [{**choice, "finish_reason": finish}]}

    release = state.hold(asker, n)
    try:
        replies = await started([start(i) for i in range(n)])
        if stream:
            response, release = stream_reply(state, replies[0], chunk, include_usage, stored, release, role=True), None
            return response
        results = await collect_all(replies, request)
    finally:
        if release is not None:
            release()
    choices, ids = [], []
    for i, (reply, (text, stats)) in enumerate(zip(replies, results, strict=True)):
        if (stored_id := await run_in_threadpool(stored, text, stats)) is not None:
            ids.append(stored_id)
        choices.append(
            {
                "index": i,
                "message": {"role": "assistant", "content": text},
                "logprobs": _logprobs(reply.logprobs) if wants_logprobs else None,
                "finish_reason": FINISH[stats.finish_reason],
            }
        )
    body = {
        **envelope("chat.completion", model, ident),
        "choices": choices,
        "usage": usage(results[0][1].prompt_tokens, sum(s.new_tokens for _, s in results)),
        "workbench": {"checkpoint": checkpoint, "seeds": [s.seed for _, s in results], "generation_ids": ids},
    }
    return JSONResponse(body)
