"""Feedback in the chat: a like or dislike on each reply, a regenerated reply the visitor keeps recorded as a
preference pair (the new reply preferred over the one it replaced), and a reply edited in place kept as a correction.

    chat_fn = recording(ctx, make_chat_fn(ctx))     # remembers each reply this server made, per browser session
    wire_likes(ctx, chatbot)                         # Chatbot.like -> a "like"/"dislike"/"cleared" row
    wire_edits(ctx, chatbot, notice)                 # Chatbot.edit -> a correction of that reply

The server trusts only replies it made itself: `recording` keeps the last replies of each session (conversation,
reply, checkpoint, settings) in memory, and a like, or a "kept" regenerate, is matched against them, never taken
from what the page sends. A reply is stored (origin "chat") the first time a visitor gives feedback on it.
A reply answering the same conversation as the session's previous reply replaced it (that is what Regenerate, or
Undo and the same message again, sends); when the visitor then goes on chatting from it, or likes it, the pair
"kept over replaced" goes to the store. Everything is stored under the visitor's id (`AppContext.voter`: the keyed
id of the client's address) and counted against their vote limit.

An edit is the same kind of signal: the reply edited must be one this server made in this session (the text the
person wrote is theirs, the original never is), it is refused in one sentence in the chat's notice unless the caller
is the owner or the owner allowed visitors' edits (WORKBENCH_VISITOR_EDITS), its text is bounded by the caller's
message size, and it counts against the vote limit: it costs the store a row, never the model a reply, like a like.
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
from anyio import to_thread

from workbench.errors import WorkbenchError
from workbench.gate.sizes import measure
from workbench.gate.visitor import Visitor
from workbench.generation.router import split
from workbench.generation.settings import GenerationSettings, conversation, message_text, plain_history
from workbench.registry import BASE_NAME
from workbench.ui.context import AppContext, session_of

log = logging.getLogger(__name__)
SESSIONS_KEPT = 5_000  # browser sessions whose recent replies are remembered (bounded memory under a flood)
REPLIES_KEPT = 16  # replies remembered per session
# The log is bounded by its text too, not only by counts: session hashes are the client's to choose, and one
# reply's conversation may hold a visitor's 100,000 characters (the owner's a million), so counts alone allowed
# 5,000 x 16 x ~112k characters. Oldest replies of a session go first, then the least recently used sessions.
SESSION_CHARS = 2_000_000
TOTAL_CHARS = 64_000_000
UNKNOWN = "This reply was not made in this session of the app (it may have restarted), so no feedback was recorded."
EDITS_OFF = "Editing replies is not open to visitors here: the owner of this app has not allowed it."
NOT_A_REPLY = "Only a reply of the model can be edited: to change your message, use Undo."
UNKNOWN_EDIT = "This reply was not made in this session of the app (it may have restarted), so the edit was not kept."
EDITS_KEPT = 4  # the edits of one reply recognised as it (by hash), so an edited reply can be edited again


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
    edits: list[int] = field(default_factory=list)  # hashes of the texts it was corrected to (newest last)

    def chars(self) -> int:
        """The text it holds (its conversation and its reply), the log's measure of its memory."""
        return len(self.output) + sum(len(m["content"]) for m in self.messages)

    def asked(self) -> list[dict[str, str]]:
        """The conversation without the system prompt (how the page's history shows it)."""
        return [m for m in self.messages if m["role"] != "system"]


class ReplyLog:
    """The recent replies of each browser session, thread-safe and bounded."""

    def __init__(self, session_chars: int = SESSION_CHARS, total_chars: int = TOTAL_CHARS) -> None:
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, list[Entry]] = OrderedDict()
        self._chars: dict[str, int] = {}  # per session: the text of its entries and of the replies they replaced
        self.session_chars = session_chars
        self.total_chars = total_chars
        self.total = 0

    def add(self, session: str, entry: Entry) -> Entry:
        """Remember a reply; one that answers the same conversation as the session's last reply replaced it."""
        with self._lock:
            entries = self._sessions.setdefault(session, [])
            self._sessions.move_to_end(session)
            if entries and entries[-1].messages == entry.messages and entries[-1].output != entry.output:
                entry.replaced = [entries[-1], *entries[-1].replaced][:REPLIES_KEPT]
            for old in entry.replaced:
                old.replaced = []  # the newest entry holds the chain flat: nothing older stays reachable
            entries.append(entry)
            del entries[:-REPLIES_KEPT]
            while len(entries) > 1 and _held(entries) > self.session_chars:
                del entries[0]
            self.total += _held(entries) - self._chars.get(session, 0)
            self._chars[session] = _held(entries)
            while len(self._sessions) > 1 and (len(self._sessions) > SESSIONS_KEPT or self.total > self.total_chars):
                gone, _ = self._sessions.popitem(last=False)
                self.total -= self._chars.pop(gone)
        return entry

    def find(self, session: str, asked: list[dict[str, str]], output: str, *, edited: bool = False) -> Entry | None:
        """The session's reply `output` to the conversation `asked` (system prompt left out), newest first; with
        `edited`, also the reply a correction to `output` was made of."""
        with self._lock:
            entries = list(self._sessions.get(session, ()))
        for e in reversed(entries):
            if (e.output == output or (edited and hash(output) in e.edits)) and e.asked() == asked:
                return e
        return None


def _held(entries: list[Entry]) -> int:
    """The text a session's entries keep alive: each entry and each reply it replaced, once."""
    seen = {id(e): e for entry in entries for e in (entry, *entry.replaced)}
    return sum(e.chars() for e in seen.values())


def _settings(values: dict[str, Any]) -> dict[str, Any]:
    """The chat request's generation settings as the store keeps them (seed -1 or empty: random)."""
    seed = values.get("seed")
    base = split(values.get("checkpoint") or BASE_NAME)[1] == BASE_NAME
    return GenerationSettings(
        temperature=values.get("temperature", 0.7),
        max_new_tokens=values.get("max_new_tokens", 256),
        top_p=values.get("top_p", 0.95),
        top_k=values.get("top_k", 50),
        min_p=values.get("min_p", 0.0),
        repetition_penalty=values.get("repetition_penalty", 1.0),
        seed=None if seed in (None, "", -1) else seed,
        stop=values.get("stop") or "",
        # as the engine records it: the base model ignores the strength
        adapter_strength=1.0 if base else values.get("adapter_strength", 1.0),
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

    def correct(self, session: str, history: list[dict[str, str]], index: Any, text: Any, who: Visitor) -> str:
        """`who` wrote `text` in place of the reply at `index` of `history` (the conversation as the page held it
        before the edit): stored as a correction of that reply, once the checks above pass. Returns the text."""
        if not who.owner and not self.ctx.settings.visitor_edits:
            raise WorkbenchError(EDITS_OFF)
        if measure(text, who.sizes.message_chars) > who.sizes.message_chars:  # before any text is built from it
            raise WorkbenchError(f"The edited reply is over {who.sizes.message_chars:,} characters, the limit here.")
        text = message_text(text) if isinstance(text, list) else text  # Gradio may send a list of text parts
        if not isinstance(text, str):
            raise WorkbenchError("The edited reply must be text.")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(history):
            raise WorkbenchError(NOT_A_REPLY)
        if history[index]["role"] != "assistant":
            raise WorkbenchError(NOT_A_REPLY)
        entry = self.replies.find(session, history[:index], history[index]["content"], edited=True)
        if entry is None:
            raise WorkbenchError(UNKNOWN_EDIT)
        self.ctx.take_vote(who)
        self.store().add_correction(self._stored(entry), text, rater=None, session=self.ctx.voter(who))
        entry.edits = [*entry.edits, hash(text)][-EDITS_KEPT:]
        return text


def recording(ctx: AppContext, chat_fn, feedback: Feedback | None = None):
    """`chat_fn` (the chat's streaming function, an async generator), remembering each finished reply for feedback;
    before answering a new message it records a regenerated reply the visitor kept (in a worker thread: it may
    write to the store). Same signature, same updates."""
    feedback = feedback or feedback_of(ctx)
    signature = inspect.signature(chat_fn)

    def went_on(session: str, history: Any, request: Any) -> list[dict[str, str]] | None:
        try:
            history = plain_history(history)
            feedback.went_on(session, history, ctx.visitor(request))
        except WorkbenchError as exc:  # feedback is a side effect: the chat answers anyway
            log.info("Chat feedback not recorded: %s", exc)
            return None
        return history

    @functools.wraps(chat_fn)
    async def recorded(*args, **kwargs):
        values = signature.bind(*args, **kwargs).arguments
        request = values.get("request")
        session = session_of(request)
        history = await to_thread.run_sync(went_on, session, values.get("history"), request)
        final = None
        async for update in chat_fn(*args, **kwargs):
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


def kept_text(settings) -> str:
    """What the line under the conversation says happens to a reply a visitor likes, dislikes or regenerates: it
    is kept in the owner's store with the conversation and system prompt, and published when votes sync to a
    dataset (`workbench.store.sync`; the dataset's id is the owner's, so it is not named)."""
    sync = bool(settings.sync_dataset and settings.hf_token)
    where = "and published to the owner's Hugging Face dataset" if sync else "in this app's store, for its owner"
    return f"A reply you like, dislike or regenerate is kept with this conversation and its system prompt, {where}."


def kept_note(ctx: AppContext) -> gr.Markdown:
    """The line near the like buttons that says liked conversations are kept (and published, with sync on)."""
    return gr.Markdown(kept_text(ctx.settings), elem_id="chat-kept", elem_classes=["chat-kept"])


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


def wire_edits(ctx: AppContext, chatbot: gr.Chatbot, notice: gr.HTML) -> None:
    """Record an edit of a reply in `chatbot` as a correction: the page then shows the edited text, or keeps the
    reply as it was and says why in `notice` (workbench/ui/notice.py)."""
    from workbench.ui.notice import NO_NOTICE, notice_html

    feedback = feedback_of(ctx)

    # Gradio's page writes the edit into its own copy of the conversation before it sends the event: the history
    # arrives edited, and the reply as it was comes as `previous_value`. The server puts that back, so the reply
    # checked against the log is the one the page showed; a refused edit sends that conversation back to the page.
    def edit(history: list, data: gr.EditData, request: gr.Request = None):
        index = data.index
        try:
            before = plain_history(history)
        except WorkbenchError as exc:
            return gr.skip(), notice_html(exc)
        if isinstance(index, int) and 0 <= index < len(before):
            before[index] = {**before[index], "content": message_text(data.previous_value)}
        try:
            text = feedback.correct(session_of(request), before, index, data.value, ctx.visitor(request))
        except WorkbenchError as exc:
            return before, notice_html(exc)
        return [*before[:index], {"role": "assistant", "content": text}, *before[index + 1 :]], NO_NOTICE

    chatbot.edit(edit, [chatbot], [chatbot, notice], api_visibility="private", concurrency_limit=None)
