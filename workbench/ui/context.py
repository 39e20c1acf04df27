"""State shared by the Gradio tabs of one app process: settings, the lazily loaded engine, live replies.

The engine is loaded on first use (or by `warm_up()` in a background thread when the app launches),
never when the UI is built, so `app.py` can be imported without loading a model. While it loads, `status()`
says what the load is doing (fetching the model, starting llama.cpp) for the page and the `/status` route; a
chat sent meanwhile waits for the load and then streams.
"""

from __future__ import annotations

import contextlib
import html
import threading

import gradio as gr

from workbench.access import SHELL, Caller, caller
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.gate.checkpoints import check_checkpoint, may_choose
from workbench.gate.limits import limits_for
from workbench.gate.sentence import public_sentence
from workbench.gate.sizes import sizes_for
from workbench.gate.visitor import Visitor, visitor_of
from workbench.generation.engine import ChatEngine
from workbench.generation.router import Router, choices
from workbench.generation.streaming import Reply
from workbench.registry import BASE_NAME, Adapter, BaseModel, adapters_signature, list_adapters, resolve_base


class AppContext:
    """Everything the tabs share. One per app process; safe to use from Gradio's worker threads."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self._engine: ChatEngine | None = None
        self._router = Router(self.settings, main=self.engine)
        self._load_error: WorkbenchError | None = None
        self._phase = "waiting for the first request"  # what the model load is doing, for status()
        self._warm_up: threading.Thread | None = None
        self._engine_lock = threading.Lock()
        self._replies: dict[tuple[str, str], Reply] = {}
        self.uploads_open = True  # build_demo says whether the app has an upload component (the Fine-tune tab)
        self._replies_lock = threading.Lock()
        self._disk: tuple[tuple, list[Adapter], list[str]] | None = None  # (adapters_signature, adapters, choices)
        self._disk_lock = threading.Lock()
        self.sizes = sizes_for(self.settings)  # the most one chat request may hold here (what the sliders offer)
        self.limits = limits_for(self.settings)  # per visitor address, the same for the app and its HTTP API

    def base(self) -> BaseModel | None:
        """The base model the app serves (torch-free lookup), or None when it is unusable."""
        try:
            return resolve_base(self.settings)
        except WorkbenchError:
            return None

    def engine(self) -> ChatEngine:
        """The chat engine, loading the base model on first call (other callers wait for it)."""
        with self._engine_lock:
            if self._engine is None:
                try:
                    self._engine = self._load()
                except WorkbenchError as exc:
                    self._load_error, self._phase = exc, "failed"
                    raise
                self._load_error, self._phase = None, "ready"
            return self._engine

    def _load(self) -> ChatEngine:
        from workbench.generation.backends import choose_backend
        from workbench.generation.fetch import local_file

        self._phase = "finding the model"
        base = local_file(resolve_base(self.settings), progress=self._say)
        backend = choose_backend(self.settings, base)
        slots = self._router.policy().slots
        where = f"llama.cpp with {slots} slots" if backend == "llamacpp" else backend
        self._say(f"loading {base.name}'s tokenizer and starting {where}")
        return ChatEngine.load(self._router.policy().engine_settings(self.settings))

    def _say(self, phase: str) -> None:
        self._phase = phase

    def status(self) -> dict:
        """Whether the model is ready, and which: {"ready", "phase", "model", "backend", "slots", "error", "loaded"}
        (`loaded`: the local families in memory now, the main one first).

        `phase` says what the load is doing ("downloading … from the Hugging Face hub", "ready"); `error` is the
        load's one sentence when it failed (with server paths shortened and secrets masked: visitors read it).
        """
        engine, error = self._engine, self._load_error
        base = engine.base if engine is not None else self.base()
        sentence = public_sentence(error, self.roots()) if error is not None else None
        return {
            "ready": engine is not None,
            "phase": self._phase,
            "model": base.name if base is not None else None,
            "backend": engine.backend_name if engine is not None else None,
            "slots": engine.slots if engine is not None else self.settings.slots,
            "error": sentence,
            "loaded": list(self._router.loaded()) if engine is not None else [],
        }

    def loading(self) -> bool:
        """True until the main model is loaded (a request for it waits for the load)."""
        return self._engine is None

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait for the background load started by `warm_up()`; True when the model is ready."""
        thread = self._warm_up
        if thread is not None:
            thread.join(timeout)
        return self._engine is not None

    def router(self) -> Router:
        """What generates for a checkpoint name: the main engine, or a remote model's ("remote:NAME")."""
        return self._router

    def warm_up(self) -> threading.Thread:
        """Start loading the model in the background, so the first message does not wait for it; then the other
        families the memory policy loads at start (`workbench.generation.budget`)."""

        def load() -> None:
            with contextlib.suppress(WorkbenchError):  # status() reports it; a chat tries again and shows it
                self.engine()
                self._router.preload()

        thread = threading.Thread(target=load, name="workbench-warm-up", daemon=True)
        self._warm_up = thread
        thread.start()
        return thread

    def settled(self) -> None:
        """Wait for the background model load, if one runs. Loading transformers' pieces from two threads at
        once can fail inside its lazy imports ("cannot import name 'AutoTokenizer'"), so other first loads of
        model code wait for it."""
        thread = self._warm_up
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _on_disk(self) -> tuple[list[Adapter], list[str]]:
        # Every open page's timer asks every few seconds: scan (and parse registry.yaml) only when a stat says
        # something changed under the adapters folder or in registry.yaml.
        signature = adapters_signature(self.settings)
        with self._disk_lock:
            if self._disk is None or self._disk[0] != signature:
                try:
                    names = choices(self.settings)
                except WorkbenchError:  # the configured model is unusable: the page says so on the first message
                    names = [BASE_NAME]
                self._disk = (signature, list_adapters(self.settings, self.base()), names)
            return list(self._disk[1]), list(self._disk[2])

    def adapters(self) -> list[Adapter]:
        """Adapters on disk, checked against the served base model."""
        return self._on_disk()[0]

    def checkpoint_choices(self) -> list[str]:
        """ "base", every usable adapter, each other family ("FAMILY[/ADAPTER]") and each remote model
        ("remote:NAME[/ADAPTER]"), for the selectors."""
        return self._on_disk()[1]

    def visitor(self, request: gr.Request | None) -> Visitor:
        """Who sent `request` (None: an in-process call, this machine's own), with their role and sizes."""
        return visitor_of(self.settings, caller_of(self, request))

    def roots(self) -> tuple:
        """Folders whose paths an error may show relative to them (the app's home): everything else is cut."""
        return (self.settings.home,)

    def take_reply(self, who: Visitor, n: int = 1) -> None:
        """Count `n` generations against a visitor's per-minute limit (all or none; never the owner's); raises
        WorkbenchError."""
        self.limits.take_reply(who, n)

    def streaming(self) -> int:
        """How many replies are streaming to pages now."""
        return len(self._replies)

    def take_vote(self, who: Visitor) -> None:
        """Count one vote against a visitor's hourly limit (never the owner's); raises WorkbenchError."""
        self.limits.take_vote(who)

    def voter(self, who: Visitor) -> str:
        """The id a visitor's anonymous ballots count under (keyed with the store's secret, never the address)."""
        return who.voter(self.settings)

    def admin_refusal(self, token: str | None, request: gr.Request | None) -> str | None:
        """None when the caller of `request` may take admin actions with `token`, else the one sentence that says
        why not: the same sentence from every event that takes the token, through the one throttle of
        `workbench.access` (a page's timer asking again with the same wrong token is not a new guess)."""
        try:
            self.settings.check_admin(token, caller_of(self, request))
        except WorkbenchError as exc:
            return str(exc)
        return None

    def check_checkpoint(self, who: Visitor, checkpoint: str | None) -> None:
        """Refuse a checkpoint a visitor may not choose (`workbench.gate.checkpoints.check_checkpoint`)."""
        check_checkpoint(self.settings, who.owner, checkpoint)

    def choices_for(self, who: Visitor) -> list[str]:
        """The checkpoint names `who` may choose (the selectors' lists)."""
        return [name for name in self.checkpoint_choices() if may_choose(self.settings, who.owner, name)]

    def track(self, key: tuple[str, str], reply: Reply) -> None:
        """Remember the reply a browser session is streaming, so its Stop button can cancel it. `key` is the
        session and the visitor's address: a session hash is the client's to choose, so another address sending
        it cannot stop someone else's reply."""
        with self._replies_lock:
            self._replies[key] = reply

    def untrack(self, key: tuple[str, str], reply: Reply) -> None:
        with self._replies_lock:
            if self._replies.get(key) is reply:
                del self._replies[key]

    def cancel(self, key: tuple[str, str]) -> bool:
        """Cancel the running reply of (session, address); returns whether there was one."""
        with self._replies_lock:
            reply = self._replies.get(key)
        if reply is None:
            return False
        reply.cancel()
        return True


def caller_of(ctx: AppContext, request: gr.Request | None) -> Caller:
    """Who sent `request`: the address our own proxy saw (never a value the client chose) and whether the request
    really comes from this machine (`workbench.access.is_local_request`); an in-process call is this machine's."""
    if request is None:
        return SHELL  # called in process (tests, scripts), not through the server
    client = getattr(request, "client", None)
    peer = client.host if client is not None else None
    settings = ctx.settings
    return caller(peer, request.headers, trusted_proxies=settings.trusted_proxies, shared=settings.share)


def client_of(ctx: AppContext, request: gr.Request | None) -> str:
    """The visitor's address key, for per-visitor limits and for throttling wrong admin tokens."""
    return caller_of(ctx, request).address


def session_of(request: gr.Request | None) -> str:
    """A key for the browser tab or API client that made the request."""
    return (request.session_hash if request is not None else None) or "anonymous"


def reply_key(ctx: AppContext, request: gr.Request | None) -> tuple[str, str]:
    """The key a streaming reply is tracked under for its Stop button: the session and the visitor's address."""
    return session_of(request), client_of(ctx, request)


def user_error(exc: WorkbenchError) -> gr.Error:
    """A WorkbenchError as the Gradio error a person sees: the gate's one public sentence
    (`workbench.gate.sentence`: secrets, URLs and server paths hidden, one line, capped), escaped, since Gradio
    renders it as HTML and it may quote user input; no traceback."""
    return gr.Error(html.escape(public_sentence(exc), quote=False), print_exception=False)
