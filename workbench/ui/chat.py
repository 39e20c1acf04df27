"""The Chat tab: a streaming chatbot with system prompt, generation settings and a checkpoint selector.

The chat function is also the named API endpoint "chat" (for gradio_client):
    chat(message, history, system_prompt, checkpoint, temperature, max_new_tokens,
         top_p, top_k, repetition_penalty, seed, stop) -> (history, stats)
`history` is a list of {"role", "content"} messages; each streamed update is the whole history with
the growing reply last, and `stats` is a one-line summary. `seed` -1 or empty means random; `stop` is
one stop string per line.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from inspect import cleandoc
from types import SimpleNamespace
from typing import Any

import gradio as gr
from anyio import to_thread

from workbench.config import usable_cores
from workbench.errors import WorkbenchError
from workbench.gate.fields import Text
from workbench.gate.sizes import check_chat
from workbench.gate.visitor import Visitor
from workbench.generation.router import REMOTE
from workbench.generation.settings import (
    EMPTY_MESSAGE,
    MAX_SEED,
    MAX_STRENGTH,
    GenerationSettings,
    conversation,
    message_text,
    plain_history,
)
from workbench.registry import BASE_NAME
from workbench.ui import chat_feedback, chat_tuning
from workbench.ui.context import AppContext, reply_key, user_error
from workbench.ui.fields import declare
from workbench.ui.notice import NO_NOTICE, NOTICE_CHARS, PUT_BACK_JS, in_page, notice_html, quiet_stop

DEFAULTS = GenerationSettings()
CHECKPOINT_REFRESH_S = 3.0  # how often an open page looks for adapters that training has written
# How often a growing reply is sent to the page. Each update costs the app's CPU (Gradio's postprocessing of every
# output, the diff, thread hops and the event stream): about 1.8 ms of Python per update on top of about 17 ms per
# chat, measured on 2 cores under load (two apps taking turns with 16 chats, CPU seconds of their Python threads).
# On a 2-core machine that CPU comes from llama.cpp's two compute threads, which wait for each other at every step.
# One chat alone gets about 7 a second (the reply still grows several times a second); the app as a whole sends at
# most UPDATES_PER_CORE_S a second per usable core (8 on 2 cores), so with many chats at once each one's updates
# come less often and the CPU stays with generation: with 16 chats, 11 updates a chat instead of 18 at the former
# 12 a second and 8 per core, and 36 Python CPU-ms a chat instead of 49. The first text of every reply goes out
# at once, and the last as soon as the reply ends.
STREAM_EVERY_S = 0.15
UPDATES_PER_CORE_S = 4
LANE_PER_SLOT = 2
NOTHING_TO_UNDO = "There is no message to regenerate or undo yet."
EDIT_NOTE = "<small>An edited reply is kept as a correction, to train the model on.</small>"
# Prompts the embedded model answered right with the default settings on all 6 seeds tried with the prompts of
# `bench --case demo_quality` (workbench/bench/quality.py): a newcomer's first try should work.
EXAMPLES = (
    "What is the capital of Japan?",
    "What is the largest ocean on Earth?",
    "What is the chemical formula of water?",
    "In which direction does the sun rise?",
    "What language is spoken in Brazil?",
)


def _settings(
    temperature, max_new_tokens, top_p, top_k, repetition_penalty, seed, stop, min_p, adapter_strength=1.0
) -> GenerationSettings:
    return GenerationSettings(
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        top_p=top_p,
        top_k=top_k,
        min_p=min_p,
        repetition_penalty=repetition_penalty,
        seed=None if seed in (None, "", -1) else seed,  # a whole number as sent (5.0 too): GenerationSettings checks
        stop=stop or "",
        adapter_strength=adapter_strength,
    )


def lane_width(slots: int) -> int:
    """How many generating events Gradio runs at once for a backend with `slots` slots (see build_chat_tab)."""
    return LANE_PER_SLOT * slots


@functools.cache
def updates_per_s() -> int:
    """The most updates a second the whole app sends to its pages on this machine (see UPDATES_PER_CORE_S)."""
    return UPDATES_PER_CORE_S * usable_cores()


def stream_interval(streams: int) -> float:
    """Seconds between a reply's updates to its page while `streams` replies stream at once (see updates_per_s)."""
    return max(STREAM_EVERY_S, streams / updates_per_s())


def make_chat_fn(ctx: AppContext):
    """The streaming chat function behind the UI and the "chat" API endpoint: an async generator, so that Gradio
    runs its updates on its event loop instead of handing each `next()` to a worker thread (a hop per update, CPU
    that a small machine takes from generation). The steps that may block (the gate's checks, tokenizing, the
    wait for a loading model) run in a worker thread, once per chat."""

    def admit(message, history, system_prompt, checkpoint, sampling, adapter_strength, request):
        who = ctx.visitor(request)
        settings = _settings(*sampling, adapter_strength)
        check_chat(who.sizes, message, system_prompt, history, settings)  # as sent, before any tokenizer or lock
        history = plain_history(history)
        ctx.check_checkpoint(who, checkpoint)
        ctx.take_reply(who)
        return who, history, settings, conversation(history, message, system_prompt)

    async def chat(
        message: str,
        history: list[dict[str, Any]] | None,
        system_prompt: str,
        checkpoint: str,
        temperature: float,
        max_new_tokens: float,
        top_p: float,
        top_k: float,
        repetition_penalty: float,
        seed: float | None,
        stop: str,
        # The newer settings come last, with defaults: callers of the "chat" endpoint from before they came still work.
        min_p: float = 0.0,
        adapter_strength: float = 1.0,  # the base model ignores it (it has no adapter to scale)
        request: gr.Request = None,
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        sampling = (temperature, max_new_tokens, top_p, top_k, repetition_penalty, seed, stop, min_p)
        try:
            args = (message, history, system_prompt, checkpoint, sampling, adapter_strength, request)
            who, history, settings, messages = await to_thread.run_sync(admit, *args)
        except WorkbenchError as exc:
            raise user_error(exc) from None
        waiting = ctx.loading() and not (checkpoint or "").startswith(REMOTE)
        if waiting:  # the first visitors of a starting app: their message shows at once, the reply once loaded
            yield [*history, {"role": "user", "content": message}], "Waiting for the model to finish loading…"
        adapter = checkpoint or BASE_NAME
        try:
            start = functools.partial(ctx.router().stream, messages, settings, adapter=adapter, evict=who.owner)
            reply = await to_thread.run_sync(start)
        except WorkbenchError as exc:
            if waiting:
                yield history, ""  # the message goes back to the box (ui/notice.PUT_BACK_JS), so not shown twice
            raise user_error(exc) from None
        session = reply_key(ctx, request)
        ctx.track(session, reply)
        history = [*history, {"role": "user", "content": message}, {"role": "assistant", "content": ""}]
        try:
            yield history, "Generating…"
            async for text in reply.apieces(lambda: stream_interval(ctx.streaming())):
                history[-1]["content"] += text
                yield history, "Generating…"
        except WorkbenchError as exc:
            raise user_error(exc) from None
        finally:
            await reply.acancel_if_running()  # the client went away: free the model
            ctx.untrack(session, reply)
        yield history, reply.stats.summary()

    return chat


def shown(history: list[dict[str, Any]], before: list[tuple[str, str, dict]] | None = None) -> list[dict[str, Any]]:
    """A plain history as the Chatbot sends it to the page (what its `postprocess` makes of text messages: the
    text as one part, trimmed by `inspect.cleandoc`), for the chat's events, which skip Gradio's postprocessing.

    `before` (kept by the caller between updates) holds the messages made last time: an unchanged message is not
    made again, so an update costs the growing reply alone. No message made is ever changed afterwards (Gradio
    diffs each update against the one before).
    """
    out = []
    for i, message in enumerate(history):
        role, text = message["role"], message_text(message.get("content"))
        if before is not None and i < len(before) and before[i][0] == role and before[i][1] == text:
            out.append(before[i][2])
            continue
        made = {"role": role, "metadata": None, "content": [{"text": cleandoc(text), "type": "text"}], "options": None}
        if before is not None:
            del before[i:]
            before.append((role, text, made))
        out.append(made)
    return out


def on_page(chat_fn):
    """Wrap a chat function (async generator of (history, ...) updates) for an event with postprocess=False: each
    update's history as the Chatbot sends it (`shown`); a skipped history stays skipped."""

    @functools.wraps(chat_fn)
    async def chat_on_page(*args, **kwargs):
        made: list[tuple[str, str, dict]] = []
        async for history, *rest in chat_fn(*args, **kwargs):
            yield (shown(history, made) if isinstance(history, list) else history, *rest)

    return chat_on_page


def _take_message(message: str) -> tuple[Any, str, str]:
    """First step of a send: an empty message stays in the box and the notice says why (the next step then stops
    the chain); otherwise the message moves out of the box to be answered, and the notice clears."""
    if not message or not message.strip():
        return gr.skip(), "", notice_html(EMPTY_MESSAGE)
    return "", message, NO_NOTICE


def _pop_last_exchange(history: list[dict[str, Any]] | None) -> tuple[list[dict[str, Any]], str]:
    """Remove the last user message and everything after it; return the rest and that message.

    Raises:
        WorkbenchError: when there is no user message yet.
    """
    history = plain_history(history)
    for i in range(len(history) - 1, -1, -1):
        if history[i]["role"] == "user":
            return history[:i], message_text(history[i]["content"])
    raise WorkbenchError(NOTHING_TO_UNDO)


def _undo(history, box: str) -> tuple[Any, Any, str, str]:
    """Undo: drop the last exchange, put its message back in the box, clear the removed reply's statistics."""
    try:
        rest, text = _pop_last_exchange(history)
    except WorkbenchError as exc:
        return gr.skip(), gr.skip(), gr.skip(), notice_html(exc)
    return rest, text if not (box or "").strip() else gr.skip(), "", NO_NOTICE


def _start_regenerate(history) -> tuple[Any, str, Any, str]:
    """Regenerate: drop the last exchange and hand its message on to be answered again (its statistics go)."""
    try:
        rest, text = _pop_last_exchange(history)
    except WorkbenchError as exc:
        return gr.skip(), "", gr.skip(), notice_html(exc)
    return rest, text, "", NO_NOTICE


def _need_message(pending: str) -> None:
    """Gate between the quick first step and the queued reply: nothing to answer ends the chain quietly (the
    notice already says why). It has no outputs, so nothing on the page is marked as failed."""
    if not pending:
        raise quiet_stop("nothing to answer")


def _checkpoint_update(ctx: AppContext, who: Visitor, current: str, known: list[str]):
    from workbench.gate.sentence import public_sentence
    from workbench.studio.promote import default_checkpoint

    choices = ctx.choices_for(who)
    unusable = (
        [a for a in ctx.adapters() if not a.usable]
        if who.owner or "adapters" in ctx.settings.visitor_checkpoints
        else []
    )
    # A reason may name files on the server: visitors see them shortened, like every error on the page.
    note = "\n".join(f"- `{a.name}` cannot be used: {public_sentence(a.reason, ctx.roots())}" for a in unusable)
    if choices == known:
        return gr.skip(), gr.skip(), known
    # A page's first fill (nothing known yet) starts on the Space's default: the checkpoint the owner promoted.
    start = current if known else default_checkpoint(ctx.settings)
    value = start if start in choices else BASE_NAME
    return gr.update(choices=choices, value=value), note, choices


def build_chat_tab(ctx: AppContext) -> SimpleNamespace:
    """Lay out the Chat tab and wire its events (call inside a gr.Blocks / gr.Tab context).

    Returns the tab's components, and `on_load`: the arguments for `demo.load` that fill the
    checkpoint selector when a page opens.
    """
    with gr.Row():
        with gr.Column(scale=3):
            # A pencil on each message where someone may edit here (the owner; visitors where allowed). Gradio 6.31
            # has no replies-only mode ("user" or "all"), so the server refuses an edit of a person's own message.
            editing = ctx.settings.visitor_edits or ctx.settings.admin_without_token
            chatbot = gr.Chatbot(
                elem_id="chatbot",
                height=460,
                label="Conversation",
                buttons=["copy"],
                editable="all" if editing else None,
            )
            chat_feedback.kept_note(ctx)
            with gr.Row():
                message = gr.Textbox(
                    elem_id="msg",
                    label="Message",  # not shown; it names the box in the gate's refusals
                    placeholder="Type a message and press Enter",
                    show_label=False,
                    scale=5,
                    max_length=ctx.sizes.message_chars,
                )
                send = gr.Button("Send", variant="primary", elem_id="send", scale=1, min_width=80)
            # What went wrong with the last thing done here, in words (see workbench/ui/notice.py).
            notice = gr.HTML(NO_NOTICE, elem_id="chat-notice")
            with gr.Row():
                stop_btn = gr.Button("Stop", variant="stop", elem_id="stop", size="sm")
                regenerate = gr.Button("Regenerate", elem_id="regenerate", size="sm")
                undo = gr.Button("Undo", elem_id="undo", size="sm")
                clear = gr.Button("Clear", elem_id="clear", size="sm")
            stats = gr.Markdown("", elem_id="stats")
            if editing:
                gr.Markdown(EDIT_NOTE, elem_id="edit-note")
            # A click puts the prompt in the box (nothing runs until Send; no API endpoint is published).
            gr.Examples([[p] for p in EXAMPLES], inputs=[message], label="Try one", elem_id="chat-examples")
            tokens = chat_tuning.token_view_layout()
        with gr.Column(scale=2):
            # Custom values are allowed so an API client can name an adapter that landed after its session
            # began; the engine checks the name and answers an unknown one with a clear sentence.
            checkpoint = gr.Dropdown(
                [BASE_NAME],
                value=BASE_NAME,
                label="Checkpoint",
                elem_id="checkpoint",
                info="The base model, or a LoRA adapter trained on it.",
                allow_custom_value=True,
            )
            adapter_strength = gr.Slider(
                0,
                MAX_STRENGTH,
                value=DEFAULTS.adapter_strength,
                step=0.05,
                label="Adapter strength",
                info="How strongly the adapter is applied: 1 = as trained, 0 = the base model (which ignores it).",
                elem_id="adapter-strength",
            )
            unusable = gr.Markdown("", elem_id="unusable-adapters")
            preset = chat_tuning.preset_picker(ctx)
            # value="" (not None) gives the API parameter a default, so `/chat` can be called with the message alone.
            system = gr.Textbox(
                "",
                label="System prompt",
                lines=3,
                elem_id="system-prompt",
                placeholder="Optional: how the assistant should behave.",
                max_length=ctx.sizes.system_chars,
            )
            temperature = gr.Slider(
                0,
                2,
                value=DEFAULTS.temperature,
                step=0.05,
                label="Temperature",
                info="0 = greedy (always the most likely token)",
                elem_id="temperature",
            )
            cap = min(2048, ctx.sizes.max_new_tokens)  # a visitor's limit on this server (the server checks it too)
            max_new_tokens = gr.Slider(
                1,
                cap,
                value=min(DEFAULTS.max_new_tokens, cap),
                step=1,
                label="Max new tokens",
                elem_id="max-new-tokens",
            )
            with gr.Accordion("Advanced", open=False, elem_id="advanced"):
                top_p = gr.Slider(0.01, 1, value=DEFAULTS.top_p, step=0.01, label="Top-p", elem_id="top-p")
                top_k = gr.Slider(0, 200, value=DEFAULTS.top_k, step=1, label="Top-k (0 = off)", elem_id="top-k")
                min_p = gr.Slider(0, 0.5, value=DEFAULTS.min_p, step=0.01, label="Min-p (0 = off)", elem_id="min-p")
                repetition_penalty = gr.Slider(
                    0.5,
                    2,
                    value=DEFAULTS.repetition_penalty,
                    step=0.05,
                    label="Repetition penalty",
                    elem_id="repetition-penalty",
                )
                seed = gr.Number(
                    -1, precision=0, minimum=-1, maximum=MAX_SEED, label="Seed (-1 = random)", elem_id="seed"
                )
                stop = gr.Textbox(
                    "",
                    label="Stop strings (one per line)",
                    lines=2,
                    elem_id="stop-strings",
                    max_length=ctx.sizes.stop_strings * (ctx.sizes.stop_chars + 1),
                )
    # The message being answered; a hidden Textbox (not a State) so that the API endpoint takes it.
    pending = gr.Textbox(visible=False, label="Message", max_length=ctx.sizes.message_chars)
    known = gr.State([])  # the choices this page shows; empty until the first fill picks the default
    settings_inputs = [system, checkpoint, temperature, max_new_tokens, top_p, top_k, repetition_penalty, seed, stop]
    settings_inputs += [min_p, adapter_strength]  # after stop, newest last: the "chat" endpoint keeps its order
    chat_fn = chat_feedback.recording(ctx, make_chat_fn(ctx))  # remembers replies for likes and regenerate pairs

    # Every way of generating shares one queue lane, twice as wide as the backend's slots: llama.cpp decodes
    # `slots` replies together, and the next ones wait at the backend already tokenized, which hands a slot over
    # the moment one frees (Gradio's queue starts a waiting event only after the last one's completion went out).
    lane = {"concurrency_id": "generate", "concurrency_limit": lane_width(ctx.settings.slots)}
    sliders = SimpleNamespace(
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        top_p=top_p,
        top_k=top_k,
        min_p=min_p,
        repetition_penalty=repetition_penalty,
        adapter_strength=adapter_strength,
        stop=stop,
    )
    chat_tuning.wire_presets(ctx, preset, checkpoint, sliders, notice)
    chat_feedback.wire_likes(ctx, chatbot)
    chat_feedback.wire_edits(ctx, chatbot, notice)
    chat_tuning.wire_token_view(ctx, tokens, chatbot, system, checkpoint, sliders, lane)
    _wire_generation(chat_fn, message, send, regenerate, undo, chatbot, stats, notice, pending, settings_inputs, lane)
    clear.click(
        lambda: ([], "", NO_NOTICE), None, [chatbot, stats, notice], concurrency_limit=None, api_visibility="private"
    )

    def stop_reply(request: gr.Request) -> None:
        ctx.cancel(reply_key(ctx, request))

    stop_btn.click(stop_reply, None, None, concurrency_limit=None, api_name="stop")

    def refresh(current: str, seen: list[str], request: gr.Request = None):
        return _checkpoint_update(ctx, ctx.visitor(request), current, seen)

    refresh_args = {
        "fn": refresh,
        "inputs": [checkpoint, known],
        "outputs": [checkpoint, unusable, known],
        "api_visibility": "private",
        "show_progress": "hidden",
    }
    gr.Timer(CHECKPOINT_REFRESH_S).tick(**refresh_args)
    checkpoint.focus(**refresh_args)
    return SimpleNamespace(
        chatbot=chatbot, message=message, stats=stats, notice=notice, checkpoint=checkpoint, on_load=refresh_args
    )


def _wire_generation(chat_fn, message, send, regenerate, undo, chatbot, stats, notice, pending, inputs, lane) -> None:
    """Send, Enter, Regenerate and Undo, and the "chat" API endpoint.

    The page's events never raise a person's mistake (workbench/ui/notice.py says why): a quick first step (queued
    like every event, so the gate checks it, with no concurrency limit: it takes no lock) writes the notice, a gate
    with no outputs ends the chain when there is nothing to answer, and the queued reply shows its own errors in the
    notice. The "chat" endpoint is the same function on a trigger that is not on the page (as gr.ChatInterface
    publishes its own), and raises: an API caller gets a failed call.

    Both reply events skip Gradio's pre- and postprocessing: each input was checked against its declaration at the
    queue's door (`workbench.ui.guard.gate_queue`) and the function checks the conversation again, and `on_page`
    sends the history as the Chatbot would. Gradio runs each input's preprocessing and each output's
    postprocessing in a worker thread of its own, per update: CPU that a small machine takes from generation.
    """
    raw = {"preprocess": False, "postprocess": False}
    quick = {"concurrency_limit": None, "api_visibility": "private"}
    # hidden: the page's screen-reader announcer would otherwise say "Error" when the gate stops a chain
    gate = {"fn": _need_message, "inputs": [pending], "outputs": None, "show_progress": "hidden", **quick}
    answer = {
        "fn": on_page(in_page(chat_fn)),
        "inputs": [pending, chatbot, *inputs],
        "outputs": [chatbot, stats, notice],
        "show_progress_on": [chatbot, stats],
        "api_visibility": "private",
        **raw,
        **lane,
    }
    # in the browser alone: an unanswered message back into the box (ui/notice.PUT_BACK_JS). The notice is an input
    # there, so it gets a declaration, as every event's input does (the server never runs this step).
    declare(notice, Text("Notice", chars=NOTICE_CHARS))
    put_back = {"fn": None, "inputs": [notice, pending, message], "outputs": [message], "js": PUT_BACK_JS}
    for trigger in (message.submit, send.click):
        taken = trigger(_take_message, [message], [message, pending, notice], **quick)
        taken.then(**gate).success(**answer).then(**put_back)
    popped = regenerate.click(_start_regenerate, [chatbot], [chatbot, pending, stats, notice], **quick)
    popped.then(**gate).success(**answer).then(**put_back)
    undo.click(_undo, [chatbot, message], [chatbot, message, stats, notice], **quick)
    api_only = gr.Button(visible=False, elem_id="chat-api")
    api_only.click(on_page(chat_fn), [pending, chatbot, *inputs], [chatbot, stats], api_name="chat", **raw, **lane)
