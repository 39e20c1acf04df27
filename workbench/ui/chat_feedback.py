"""Feedback in the chat: a like or dislike on each reply, and a regenerated reply the visitor keeps recorded as a
preference pair (the new reply preferred over the one it replaced).

    chat_fn = recording(ctx, make_chat_fn(ctx))     # remembers each reply this server made, per browser session
    wire_likes(ctx, chatbot)                         # Chatbot.like -> a "like"/"dislike"/"cleared" row

The server trusts only replies it made itself: `recording` keeps the last replies of each session (conversation,
reply, checkpoint, settings) in memory, and a like, or a "kept" regenerate, is matched against them, never taken
from what the page sends. A reply is stored (origin "chat") the first time a visitor gives feedback on it.
A reply answering the same conversation as the session's previous reply replaced it (that is what Regenerate, or
Undo and the same message again, sends); when the visitor then goes on chatting from it, or likes it, the pair
"kept over replaced" goes to the store. Everything is stored under the visitor's id (`AppContext.voter`: the keyed
id of the client's address) and counted against their vote limit.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings, conversation, message_text, plain_history
from workbench.registry import BASE_NAME
from workbench.ui.context import AppContext, Visitor, session_of

log = logging.getLogger(__name__)
SESSIONS_KEPT = 5_000  # browser sessions whose recent replies are remembered (bounded memory under a flood)
REPLIES_KEPT = 16  # replies remembered per session
UNKNOWN = "This reply was not made in this session of the app (it may have restarted), so no feedback was recorded."


@dataclass
class Entry:
    """A reply this server made: what was sent, what came back, and what it replaced (newest first)."""

    messages: list[dict[str, str]]
    output: str
    checkpoint: str
    settings: dict[str, Any]
    replaced: list[Entry] = field(default_factory=list)
    generation_id: int | None = None
    kept: bool = False  # its preference pairs are stored

    def asked(self) -> list[dict[str, str]]:
        """The conversation without the system prompt (how the page's history shows it)."""
        return [m for m in self.messages if m["role"] != "system"]


class ReplyLog:
    """The recent replies of each browser session, thread-safe and bounded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, list[Entry]] = OrderedDict()

    def add(self, session: str, entry: Entry) -> Entry:
        """Remember a reply; one that answers the same conversation as the session's last reply replaced it."""
        with self._lock:
            entries = self._sessions.setdefault(session, [])
            self._sessions.move_to_end(session)
            if entries and entries[-1].messages == entry.messages and entries[-1].output != entry.output:
                entry.replaced = [entries[-1], *entries[-1].replaced][:REPLIES_KEPT]
            entries.append(entry)
            del entries[:-REPLIES_KEPT]
            while len(self._sessions) > SESSIONS_KEPT:
                self._sessions.popitem(last=False)
        return entry

    def find(self, session: str, asked: list[dict[str, str]], output: str) -> Entry | None:
        """The session's reply `output` to the conversation `asked` (system prompt left out), newest first."""
        with self._lock:
            entries = list(self._sessions.get(session, ()))
        return next((e for e in reversed(entries) if e.output == output and e.asked() == asked), None)


def _settings(values: dict[str, Any]) -> dict[str, Any]:
    """The chat request's generation settings as the store keeps them (seed -1 or empty: random)."""
    seed = values.get("seed")
    return GenerationSettings(
        temperature=values.get("temperature", 0.7),
        max_new_tokens=values.get("max_new_tokens", 256),
        top_p=values.get("top_p", 0.95),
        top_k=values.get("top_k", 50),
        min_p=values.get("min_p", 0.0),
        repetition_penalty=values.get("repetition_penalty", 1.0),
        seed=None if seed in (None, "", -1) else seed,
        stop=values.get("stop") or "",
    ).to_dict()


class Feedback:
    """The chat's reply log and what it writes to the store."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.replies = ReplyLog()

    def store(self):
        from workbench.ui.stores import shared_store

        return shared_store(self.ctx.settings)

    def _stored(self, entry: Entry) -> int:
        if entry.generation_id is None:
            router = self.ctx.router()
            entry.generation_id = self.store().add_generation(
                router.store_name(entry.checkpoint),
                entry.messages,
                entry.output,
                entry.settings,
                base_model=router.base_name(entry.checkpoint),
                metadata={"source": "chat", "checkpoint": entry.checkpoint},
                origin="chat",
            )
        return entry.generation_id

    def keep(self, entry: Entry, voter: str) -> None:
        """The visitor kept `entry`: store it preferred over each reply it replaced (once)."""
        if entry.kept or not entry.replaced:
            return
        kept = self._stored(entry)
        for old in entry.replaced:
            self.store().add_feedback("preferred", kept, other=self._stored(old), rater=None, session=voter)
        entry.kept = True

    def went_on(self, session: str, history: list[dict[str, str]], who: Visitor) -> None:
        """A new message was sent after `history` by `who`: the reply it ends with, if regenerated, was kept."""
        if not history or history[-1]["role"] != "assistant":
            return
        entry = self.replies.find(session, history[:-1], history[-1]["content"])
        if entry is not None and entry.replaced and not entry.kept:
            self.ctx.take_vote(who)
            self.keep(entry, self.ctx.voter(who))

    def react(self, session: str, history: list[dict[str, str]], index: int, liked: Any, who: Visitor) -> None:
        """A like (True), dislike (False) or a reaction taken back ("") by `who` on the reply at `index` of
        `history`."""
        if not isinstance(index, int) or not 0 <= index < len(history) or history[index]["role"] != "assistant":
            raise WorkbenchError("Only a reply of the model can be liked or disliked.")
        entry = self.replies.find(session, history[:index], history[index]["content"])
        if entry is None:
            raise WorkbenchError(UNKNOWN)
        kind = {True: "like", False: "dislike"}.get(liked, "cleared")
        self.ctx.take_vote(who)
        voter = self.ctx.voter(who)
        self.store().add_feedback(kind, self._stored(entry), rater=None, session=voter)
        if kind == "like":
            self.keep(entry, voter)


def recording(ctx: AppContext, chat_fn, feedback: Feedback | None = None):
    """`chat_fn` (the chat's streaming function), remembering each finished reply for feedback; before answering a
    new message it records a regenerated reply the visitor kept. Same signature, same updates."""
    feedback = feedback or feedback_of(ctx)
    signature = inspect.signature(chat_fn)

    @functools.wraps(chat_fn)
    def recorded(*args, **kwargs):
        values = signature.bind(*args, **kwargs).arguments
        request = values.get("request")
        session = session_of(request)
        try:
            history = plain_history(values.get("history"))
            feedback.went_on(session, history, ctx.visitor(request))
        except WorkbenchError as exc:  # feedback is a side effect: the chat answers anyway
            log.info("Chat feedback not recorded: %s", exc)
            history = None
        final = None
        for update in chat_fn(*args, **kwargs):
            final = update
            yield update
        if final is None or history is None or not final[0]:
            return
        try:
            sent = conversation(history, values.get("message") or "", values.get("system_prompt") or "")
            reply = message_text(final[0][-1].get("content"))
            checkpoint = values.get("checkpoint") or BASE_NAME
            feedback.replies.add(session, Entry(sent, reply, checkpoint, _settings(values)))
        except (WorkbenchError, AttributeError, IndexError) as exc:
            log.info("Chat reply not remembered for feedback: %s", exc)

    return recorded


_FEEDBACK: dict[int, Feedback] = {}
_FEEDBACK_LOCK = threading.Lock()


def feedback_of(ctx: AppContext) -> Feedback:
    """The one Feedback of an app context."""
    with _FEEDBACK_LOCK:
        return _FEEDBACK.setdefault(id(ctx), Feedback(ctx))


def wire_likes(ctx: AppContext, chatbot: gr.Chatbot) -> None:
    """Show like/dislike on each reply of `chatbot` and record them (a refusal is a one-sentence warning)."""
    feedback = feedback_of(ctx)

    def like(history: list, data: gr.LikeData, request: gr.Request = None) -> None:
        try:
            feedback.react(
                session_of(request),
                plain_history(history),
                data.index,
                data.liked,
                ctx.visitor(request),
            )
        except WorkbenchError as exc:
            from workbench.ui.arena import say

            gr.Warning(say(exc))

    chatbot.like(like, [chatbot], None, api_visibility="private", concurrency_limit=None)
