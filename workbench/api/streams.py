"""Running replies for the endpoints: admitting a request (sizes, loading, rate limit), starting replies off the
event loop, waiting for them, and streaming one as server-sent events that end with `data: [DONE]`.

A stream sends what was generated every STREAM_EVERY_S (not one event per token: the event loop and the client
wake a few times a second, not once per token). When the client goes away, streamed or waiting for the whole reply,
the reply is cancelled at once, so its slot is free for the next request, and the visitor's count is released.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from workbench.api.errors import ApiError
from workbench.api.state import FINISH, STREAM_EVERY_S, ApiState, Asker, usage
from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings, Message
from workbench.generation.streaming import Reply, collect

Chunk = Callable[
    [str | None, str | None, list[dict]], dict[str, Any]
]  # (text or None for the opening, finish, logprobs)


def fits(asker: Asker, conversations: list[list[Message]], settings: GenerationSettings) -> None:
    """Refuse conversations or settings over the caller's sizes (400)."""
    try:
        for messages in conversations:
            asker.check(messages, settings)
    except WorkbenchError as exc:
        raise ApiError.from_workbench(exc) from None


def admit(state: ApiState, asker: Asker, conversations: list[list[Message]], settings: GenerationSettings, n: int):
    """Refuse a request over the caller's sizes (400), before the model is ready (503) or past their rate (429)."""
    fits(asker, conversations, settings)
    state.check_ready()
    try:
        asker.take(n)
    except WorkbenchError as exc:
        raise ApiError(429, str(exc), code="rate_limit_exceeded") from None


async def started(starts: list[Callable[[], Reply]]) -> list[Reply]:
    """Start replies in a worker thread (tokenizing takes the CPU), all or none: when one is refused, those already
    started are cancelled (their slots freed) and the refusal is an ApiError 400."""

    def start_all() -> list[Reply]:
        replies: list[Reply] = []
        try:
            for start in starts:
                replies.append(start())
        except BaseException:
            for reply in replies:
                reply.cancel()
            raise
        return replies

    try:
        return await run_in_threadpool(start_all)
    except WorkbenchError as exc:
        raise ApiError.from_workbench(exc) from None


async def collect_all(replies: list[Reply], request: Request) -> list[tuple[str, Any]]:
    """Every reply's (text, stats), waited for in a worker thread while listening for `request`'s client the way
    Starlette's StreamingResponse does (`http.disconnect`), so a whole reply is freed like a stream: when the
    client goes away, or the server cancels the request as it shuts down, every reply is cancelled and its slot is
    free at the next token. ApiError 499 for a client that left, 400 for a failed reply."""
    results: list[tuple[str, Any]] | None = None
    failure: WorkbenchError | None = None
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_cancel_when_gone, request, group.cancel_scope)
            try:
                # Abandoning the wait on cancel lets the finally below cancel the replies now; the waiting
                # thread then ends at their next token (without it, the cancel would wait for the whole reply).
                results = await anyio.to_thread.run_sync(collect, replies, abandon_on_cancel=True)
            except WorkbenchError as exc:  # kept out of the task group, which would wrap it in an ExceptionGroup
                failure = exc
            finally:
                group.cancel_scope.cancel()
    finally:
        for reply in replies:  # ended, failed, client gone or server stopping: free every slot
            reply.cancel()
    if failure is not None:
        raise ApiError.from_workbench(failure) from None
    if results is None:
        raise ApiError(499, "The client closed the request before its reply was ready.", code="client_closed")
    return results


async def _cancel_when_gone(request: Request, scope: anyio.CancelScope) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


def sse(data: dict[str, Any] | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


class _Stream(StreamingResponse):
    """A StreamingResponse that runs `cleanup` when it ends, however it ends: a client that leaves before the first
    event cancels the response before its generator ever ran, so the generator's own `finally` never comes."""

    def __init__(self, content: AsyncIterator[str], cleanup: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.cleanup = cleanup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.cleanup()


def stream_reply(
    state: ApiState,
    reply: Reply,
    chunk: Chunk,
    include_usage: bool,
    stored: Callable[[str, Any], Any],
    release: Callable[[], None],
    *,
    role: bool = False,
    opening: str = "",
    opening_logprobs: list[dict] | None = None,
) -> StreamingResponse:
    """`reply` as server-sent events: an opening chunk (the chat's role, or `opening` text such as an echoed
    prompt), the text as it comes, a chunk with the finish reason, the usage when asked, `data: [DONE]`. An error
    after the stream began is one more event in OpenAI's error shape. `stored(text, stats)` runs at the end."""

    def cleanup() -> None:  # both are safe to call again
        reply.cancel()  # the client went away (or it ended): the slot is free at the next token
        release()

    async def events() -> AsyncIterator[str]:
        try:
            if role or opening:
                yield sse(chunk(None if role else opening, None, opening_logprobs or []))
            sent = 0
            async for piece in reply.apieces(lambda: STREAM_EVERY_S):  # on the loop: no thread hop per piece
                entries = reply.logprobs[sent:]
                sent += len(entries)
                yield sse(chunk(piece, None, entries))
            stats = reply.stats
            yield sse(chunk("", FINISH[stats.finish_reason], reply.logprobs[sent:]))
            if include_usage:
                yield sse({**chunk("", None, []), "choices": [], "usage": usage(stats.prompt_tokens, stats.new_tokens)})
            await run_in_threadpool(stored, reply.text, stats)
        except WorkbenchError as exc:
            yield sse(ApiError.from_workbench(exc).body(state.settings.api_keys))
        finally:
            cleanup()
        yield sse("[DONE]")

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return _Stream(events(), cleanup, media_type="text/event-stream", headers=headers)
