"""State shared by the Gradio tabs of one app process: settings, the lazily loaded engine, live replies.

The engine is loaded on first use (or by `warm_up()` in a background thread when the app launches),
never when the UI is built, so `app.py` can be imported without loading a model.
"""

from __future__ import annotations

import html
import threading

import gradio as gr

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.engine import ChatEngine
from workbench.generation.router import Router, choices
from workbench.generation.streaming import Reply
from workbench.registry import BASE_NAME, Adapter, BaseModel, list_adapters, resolve_base


class AppContext:
    """Everything the tabs share. One per app process; safe to use from Gradio's worker threads."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self._engine: ChatEngine | None = None
        self._router = Router(self.settings, main=self.engine)
        self._load_error: WorkbenchError | None = None
        self._engine_lock = threading.Lock()
        self._replies: dict[str, Reply] = {}
        self._replies_lock = threading.Lock()

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
                self._engine = ChatEngine.load(self.settings)
            return self._engine

    def router(self) -> Router:
        """What generates for a checkpoint name: the main engine, or a remote model's ("remote:NAME")."""
        return self._router

    def warm_up(self) -> threading.Thread:
        """Start loading the model in the background, so the first message does not wait for it."""

        def load() -> None:
            try:
                self.engine()
            except WorkbenchError as exc:  # shown to the user on their first message instead
                self._load_error = exc

        thread = threading.Thread(target=load, name="workbench-warm-up", daemon=True)
        thread.start()
        return thread

    def adapters(self) -> list[Adapter]:
        """Adapters on disk, checked against the served base model."""
        return list_adapters(self.settings, self.base())

    def checkpoint_choices(self) -> list[str]:
        """ "base", every usable adapter and each remote model ("remote:NAME[/ADAPTER]"), for the selectors."""
        try:
            return choices(self.settings)
        except WorkbenchError:  # the configured model is unusable: the page says so on the first message
            return [BASE_NAME]

    def track(self, session: str, reply: Reply) -> None:
        """Remember the reply a browser session is streaming, so its Stop button can cancel it."""
        with self._replies_lock:
            self._replies[session] = reply

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


def session_of(request: gr.Request | None) -> str:
    """A key for the browser tab or API client that made the request."""
    return (request.session_hash if request is not None else None) or "anonymous"


def user_error(exc: WorkbenchError) -> gr.Error:
    """A WorkbenchError as the Gradio error a person sees (its one sentence, no traceback).

    Gradio renders an error message as HTML, and the sentence may quote user input: escape it.
    """
    return gr.Error(html.escape(str(exc), quote=False), print_exception=False)
