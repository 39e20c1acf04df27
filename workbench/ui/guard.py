"""What the app's HTTP server refuses before Gradio sees a request: unknown Host names, oversized bodies, uploads
from anyone but the admin, and a visitor's requests beyond their share of the queue.

    demo.queue(...).launch(**launch_options(settings, uploads=...))   # installs `Guard` as ASGI middleware
    gate_queue(demo, settings)                                       # after demo.queue(): inputs, visitor share

`Guard` is plain ASGI (no Gradio import, nothing buffered beyond the caps):
- **Host allowlist** (`Settings.answers_to`): a DNS-rebinding page reaches 127.0.0.1 under its own name; such
  a request gets 421 and one sentence.
- **Body caps**: every request body is read (up to the cap) before the app sees any of it; a visitor may send
  `VISITOR_BODY` bytes, the owner `OWNER_BODY`. Gradio parses JSON bodies whole, so without this one request could
  hold hundreds of megabytes in memory.
- **Uploads** (`/gradio_api/upload`): only where admin actions exist at all, and only for a caller who is the
  admin (`Policy.proven`: the owner on this machine, or an address that gave the right token within the hour);
  with a Content-Length within the caller's hourly byte budget and the app's total, at most `UPLOAD_FILES` files
  per request. The body is read whole into memory first (a few uploads at once), so a refused upload never
  touches the disk; Gradio writes only accepted ones.

Behind it, `gate_queue` wraps the queue's `push` (the one door of `/gradio_api/queue/join`): each request's values
are checked against its event's declared inputs (`workbench.ui.fields`: HTTP 400 and a sentence), and Gradio's one
global bound (`max_size`) gets a per-visitor share (HTTP 503 and a sentence).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from workbench.access import caller, header_values, host_allowed
from workbench.config import Settings
from workbench.gate.sizes import OWNER_BODY, VISITOR_BODY

UPLOAD_BODY = 21 * 1024 * 1024  # one dataset file of up to 20 MB (MAX_UPLOAD) and its multipart framing
UPLOAD_FILES = 4
UPLOAD_WINDOW_S = 3600.0
TOTAL_WINDOW_S = 2 * 3600.0  # Gradio's cache cleanup deletes uploads after one to two hours
GENERATION_LANES = ("generate",)  # concurrency ids whose events run the model

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class _Budget:
    """Bytes accepted per key over a sliding window (a key "*" for everyone)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._seen: dict[str, deque[tuple[float, int]]] = {}

    def used(self, key: str) -> int:
        now = time.monotonic()
        with self._lock:
            times = self._seen.get(key, deque())
            while times and now - times[0][0] > self.window_s:
                times.popleft()
            return sum(n for _, n in times)

    def add(self, key: str, size: int) -> None:
        with self._lock:
            self._seen.setdefault(key, deque()).append((time.monotonic(), size))


class Guard:
    """ASGI middleware in front of the Gradio app (see the module docstring).

    Args:
        app: The ASGI app it guards.
        settings: The app's settings (hosts, proxies, roles, upload budgets).
        uploads: Whether the app has any upload component at all (the Fine-tune tab exists).
    """

    def __init__(self, app: Any, settings: Settings, uploads: bool = True) -> None:
        self.app = app
        self.settings = settings
        self.uploads = uploads
        self.hosts = settings.answers_to
        self._per_address = _Budget(UPLOAD_WINDOW_S)
        self._total = _Budget(TOTAL_WINDOW_S)
        self._uploading = asyncio.Semaphore(2)  # uploads read into memory at once

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _Headers(scope)
        hosts = header_values(headers, "host")
        if len(hosts) != 1 or not host_allowed(hosts[0], self.hosts):
            name = hosts[0] if hosts else "none"
            await _refuse(scope, send, 421, f"This server does not answer to the host name {name[:100]!r}.")
            return
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        peer = (scope.get("client") or (None,))[0]
        settings = self.settings
        who = caller(peer, headers, trusted_proxies=settings.trusted_proxies, shared=settings.share)
        if scope["path"].rstrip("/").endswith("/upload"):
            await self._upload(scope, receive, send, headers, who)
            return
        cap = OWNER_BODY if settings.is_owner(who) else VISITOR_BODY
        body = await _read(scope, receive, send, headers, cap)
        if body is not None:
            await self.app(scope, _replay(body, receive), send)

    async def _upload(self, scope: Scope, receive: Receive, send: Send, headers: Any, who: Any) -> None:
        settings = self.settings
        if not self.uploads:
            await _refuse(scope, send, 403, "Uploads are closed on this server.")
            return
        if not settings.access.proven(who):
            await _refuse(
                scope, send, 403, "Uploads are for the admin: enter the admin token on the Fine-tune tab first."
            )
            return
        lengths = header_values(headers, "content-length")
        if len(lengths) != 1 or not lengths[0].strip().isdigit():
            await _refuse(scope, send, 411, "An upload must say its size (Content-Length).")
            return
        size = int(lengths[0])
        mine = self._per_address.used(who.address)
        everyone = self._total.used("*")
        if size > UPLOAD_BODY:
            await _refuse(scope, send, 413, f"The upload is {size:,} bytes; the limit is {UPLOAD_BODY:,}.")
            return
        if not settings.is_owner(who) and mine + size > settings.upload_mb * 1024 * 1024:
            await _refuse(scope, send, 429, f"You have reached the upload limit of {settings.upload_mb} MB per hour.")
            return
        if everyone + size > settings.upload_total_mb * 1024 * 1024:
            await _refuse(scope, send, 507, "The server holds as many uploads as it keeps: try again in an hour.")
            return
        async with self._uploading:
            body = await _read(scope, receive, send, headers, size)
            if body is None:
                return
            if len(body) != size:
                await _refuse(scope, send, 400, "The upload ended before its declared size.")
                return
            if _parts(headers, body) > UPLOAD_FILES:
                await _refuse(scope, send, 413, f"An upload may carry at most {UPLOAD_FILES} files.")
                return
            self._per_address.add(who.address, size)
            self._total.add("*", size)
            await self.app(scope, _replay(body, receive), send)


class _Headers:
    """A request's header lines from its ASGI scope, for `header_values` (names lower-case, repeats kept)."""

    def __init__(self, scope: Scope) -> None:
        self._raw = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers") or []]

    def getlist(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self._raw if k == low]


def _parts(headers: Any, body: bytes) -> int:
    """Files in a multipart body: the number of boundary lines, less the closing one."""
    content_type = (header_values(headers, "content-type") or [""])[0]
    params = [p.strip() for p in content_type.split(";")]
    boundary = next((p[len("boundary=") :].strip('"') for p in params if p.startswith("boundary=")), "")
    if not boundary:
        return 0
    return max(body.count(b"--" + boundary.encode("latin-1")) - 1, 0)


async def _read(scope: Scope, receive: Receive, send: Send, headers: Any, cap: int) -> bytes | None:
    """The whole request body, or None after answering 413 once it passes `cap` bytes (or says it will)."""
    lengths = header_values(headers, "content-length")
    if lengths and lengths[0].strip().isdigit() and int(lengths[0]) > cap:
        await _refuse(scope, send, 413, f"The request is {int(lengths[0]):,} bytes; the limit here is {cap:,}.")
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            await _refuse(scope, send, 413, f"The request is over {cap:,} bytes, the limit here.")
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then passes on what the client sends next."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(scope: Scope, send: Send, status: int, sentence: str) -> None:
    """Answer with `status` and one sentence (JSON `{"detail": ...}` like FastAPI's own errors)."""
    import json

    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": sentence[:120]})
        return
    payload = json.dumps({"detail": sentence}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


# --- the queue ---------------------------------------------------------------------------------------------


def gate_queue(demo: Any, settings: Settings) -> None:
    """Check every request at the queue's door (call after `demo.queue()`): its values against the event's
    declared inputs (`workbench.ui.fields`), then the caller's share of the queue. Gradio 6's `Queue.push` is the
    one door of `/gradio_api/queue/join` (every event of the app is queued: `tests/e2e/test_hostile.py` checks),
    so nothing reaches a function, nor Gradio's preprocessing, unchecked. Wrapped on this demo's queue only.

    The share: a visitor may have at most `Settings.visitor_events` events of any kind waiting or running, and at
    most `Settings.visitor_requests` of them in the generation lanes; the owner is not limited. Without the first,
    one address firing cheap events from many session hashes filled Gradio's global `max_size` and every other
    visitor was answered "Queue is full".
    """
    from workbench.gate.fields import Refused, check_all
    from workbench.gate.sentence import public_sentence
    from workbench.gate.sizes import sizes_for
    from workbench.ui.fields import fields_of

    queue = demo._queue
    push = queue.push
    sizes = sizes_for(settings)  # the largest request any caller of this app may send; functions check the caller's
    checks = {index: fields_of(fn, sizes) for index, fn in demo.fns.items()}

    def who_sent(request: Any) -> Any:
        peer = request.client.host if getattr(request, "client", None) is not None else None
        return caller(peer, request.headers, trusted_proxies=settings.trusted_proxies, shared=settings.share)

    async def gated_push(body: Any, request: Any, username: str | None):
        index = body.fn_index
        fields = checks.get(index) if isinstance(index, int) and not isinstance(index, bool) else None
        if fields is None:
            return False, "This app has no such action.", "error"
        try:
            check_all(fields, body.data)
        except Refused as exc:
            if exc.index is None:
                return False, public_sentence(exc), "error"
            return False, _validation(demo.fns[index], exc.index, public_sentence(exc)), "validator_error"
        if request is not None:
            refusal = _over_share(queue, demo.fns[index], who_sent(request), who_sent, settings)
            if refusal:
                return False, refusal, "queue_full"
        return await push(body=body, request=request, username=username)

    queue.push = gated_push


def _validation(fn: Any, bad: int, sentence: str) -> list[dict[str, Any]]:
    """A refusal in the shape of Gradio's own input validation (HTTP 422): the page paints the sentence on the
    input it concerns, and gradio_client raises ValidationError with it."""
    from gradio.queueing import process_validation_response

    results = [
        {"__type__": "validate", "is_valid": i != bad, "message": sentence if i == bad else ""}
        for i in range(len(fn.inputs))
    ]
    return process_validation_response(results, fn)[1]


def _over_share(queue: Any, fn: Any, who: Any, who_sent: Callable[[Any], Any], settings: Settings) -> str | None:
    """The sentence refusing `who` one more event of `fn`, or None while they are within their share."""
    if settings.is_owner(who):
        return None
    mine = [e for e in _events(queue) if who_sent(e.request).address == who.address]
    if fn.concurrency_id in GENERATION_LANES:
        generating = sum(1 for e in mine if e.fn.concurrency_id in GENERATION_LANES)
        if generating >= settings.visitor_requests:
            return (
                f"You already have {generating} requests waiting or running, the most one visitor may have here: "
                "wait for them to finish."
            )
    if len(mine) >= settings.visitor_events:
        return (
            f"You already have {len(mine)} actions waiting or running, the most one visitor may have here: "
            "wait for them to finish."
        )
    return None


def _events(queue: Any) -> list[Any]:
    """Every event waiting in the queue or being processed, of every concurrency id."""
    waiting = [e for q in list(queue.event_queue_per_concurrency_id.values()) for e in list(q.queue)]
    running = [e for job in list(queue.active_jobs) if job for e in job]
    return [e for e in waiting + running if getattr(e, "request", None) is not None]
