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

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.engine import ChatEngine
from workbench.generation.router import Router, choices
from workbench.generation.streaming import Reply
from workbench.registry import BASE_NAME, Adapter, BaseModel, adapters_signature, list_adapters, resolve_base
from workbench.ui.limits import reply_limit, sizes_for, vote_limit


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
        self._replies: dict[str, Reply] = {}
        self._replies_lock = threading.Lock()
        self._disk: tuple[tuple, list[Adapter], list[str]] | None = None  # (adapters_signature, adapters, choices)
        self._disk_lock = threading.Lock()
        self.sizes = sizes_for(self.settings)  # what one chat request may hold
        self.reply_limit = reply_limit(self.settings)  # per visitor, for callers that are not the owner
        self.vote_limit = vote_limit(self.settings)

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
        where = f"llama.cpp with {self.settings.slots} slots" if backend == "llamacpp" else backend
        self._say(f"loading {base.name}'s tokenizer and starting {where}")
        return ChatEngine.load(self.settings)

    def _say(self, phase: str) -> None:
        self._phase = phase

    def status(self) -> dict:
        """Whether the model is ready, and which: {"ready", "phase", "model", "backend", "slots", "error"}.

        `phase` says what the load is doing ("downloading … from the Hugging Face hub", "ready"); `error` is the
        load's one sentence when it failed (with server paths shortened and secrets masked: visitors read it).
        """
        engine, error = self._engine, self._load_error
        base = engine.base if engine is not None else self.base()
        sentence = None
        if error is not None:
            from workbench.safety.redact import hide_paths, redact

            sentence = hide_paths(redact(str(error)))
        return {
            "ready": engine is not None,
            "phase": self._phase,
            "model": base.name if base is not None else None,
            "backend": engine.backend_name if engine is not None else None,
            "slots": engine.slots if engine is not None else self.settings.slots,
            "error": sentence,
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
        """Start loading the model in the background, so the first message does not wait for it."""

        def load() -> None:
            with contextlib.suppress(WorkbenchError):  # status() reports it; a chat tries again and shows it
                self.engine()

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
        """ "base", every usable adapter and each remote model ("remote:NAME[/ADAPTER]"), for the selectors."""
        return self._on_disk()[1]

    def track(self, session: str, reply: Reply) -> None:
        """Remember the reply a browser session is streaming, so its Stop button can cancel it."""
        with self._replies_lock:
            self._replies[session] = reply

    def streaming(self) -> int:
        """How many replies are streaming to pages now."""
        return len(self._replies)

    def untrack(self, session: str, reply: Reply) -> None:
        with self._replies_lock:
            if self._replies.get(session) is reply:
                del self._replies[session]

    def cancel(self, session: str) -> bool:
        """Cancel the session's running reply; returns whether there was one."""
        with self._replies_lock:
            reply = self._replies.get(session)
        if reply is None:
            return False
        reply.cancel()
        return True


def client_of(ctx: AppContext, request: gr.Request | None) -> str:
    """The visitor's address as our own proxy saw it (never a value the client chose), for per-visitor limits
    and for throttling wrong admin tokens."""
    from workbench.access import client_address

    if request is None:
        return "local"  # called in process (tests, scripts), not through the server
    peer = request.client.host if request.client is not None else None
    headers = dict(request.headers) if request.headers is not None else {}
    return client_address(peer, headers, ctx.settings.trusted_proxies)


def session_of(request: gr.Request | None) -> str:
    """A key for the browser tab or API client that made the request."""
    return (request.session_hash if request is not None else None) or "anonymous"


def user_error(exc: WorkbenchError) -> gr.Error:
    """A WorkbenchError as the Gradio error a person sees (its one sentence, no traceback).

    The sentence may name a file on the server or quote a secret from the environment: the page gets it with
    paths shortened and secrets masked (visitors see no server layout). Gradio renders it as HTML and it may
    quote user input, so it is escaped too.
    """
    from workbench.safety.redact import hide_paths, redact

    text = hide_paths(redact(str(exc)))
    return gr.Error(html.escape(text, quote=False), print_exception=False)
