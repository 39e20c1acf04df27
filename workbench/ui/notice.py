"""A sentence in the page, under the control a person used: how the Chat tab shows what went wrong.

Why not `gr.Error`: in Gradio 6.31 an error raised by an event that runs outside the queue (`queue=False`) reaches
the page with no `visible` flag, and the page only shows a toast for a visible error (`log_cb` in Blocks.svelte drops
it), so the person sees red "Error" badges over the event's outputs and no words. A queued error does make a toast,
but it still badges the outputs, and toasts from every tab stack in one corner ("Error (4)"). So the page's own
events never raise a person's mistake: they write it into a notice next to where it happened, and the named API
endpoints keep raising it (an API caller gets a failed call with the same sentence).

    notice = gr.HTML("", elem_id="chat-notice")        # under the message box
    return ..., notice_html("The message is empty: type something to send.")
    return ..., NO_NOTICE                              # a later success clears it
    async for update in in_page(chat_fn)(*args): ...   # the generator's updates plus a notice, never a raise
    answered.then(None, [notice, pending, box], [box], js=PUT_BACK_JS)   # an unanswered message back in the box
"""

from __future__ import annotations

import html

import gradio as gr

from workbench.errors import WorkbenchError

NO_NOTICE = ""
UNANSWERED = "data-unanswered"
NOTICE_CHARS = 10_000  # a notice's HTML: one sentence, which may quote a message
# The browser's step after a page reply (no server call): a message that got no reply goes back into the box when
# the box is empty, so nothing typed is lost. Its inputs: the notice, the message being answered, the box.
PUT_BACK_JS = (
    "(notice, message, box) => (notice || '').includes('data-unanswered') && !(box || '').trim() ? message : box"
)
STYLE = "color:var(--error-text-color, #b91c1c);margin:0.25em 0;font-size:0.95em"


def sentence(exc: BaseException) -> str:
    """The plain sentence of a person's mistake: a gr.Error's message (which `user_error` has redacted and
    HTML-escaped for Gradio's toast) unescaped again, or a WorkbenchError's text."""
    if isinstance(exc, gr.Error):
        return html.unescape(str(exc.message))
    if isinstance(exc, WorkbenchError):
        from workbench.ui.context import user_error  # the same redaction as the API's answer

        return sentence(user_error(exc))
    return str(exc)


def notice_html(text: str | BaseException, unanswered: bool = False) -> str:
    """One sentence as the notice's HTML: escaped (it may quote what a visitor typed), announced to screen
    readers, and shown in the theme's error colour. `unanswered` marks a message that got no reply (the page's
    PUT_BACK step then returns it to the box)."""
    if isinstance(text, BaseException):
        text = sentence(text)
    if not text:
        return NO_NOTICE
    mark = f" {UNANSWERED}" if unanswered else ""
    return f'<p class="wb-notice" role="alert"{mark} style="{STYLE}">{html.escape(text, quote=False)}</p>'


def quiet_stop(reason: str) -> gr.Error:
    """The error a gate step raises to end an event chain (`.success` stops) once the notice has said why: no
    toast (not visible) and nothing printed. Raise it from an event with no outputs, so no output is badged."""
    return gr.Error(reason, visible=False, print_exception=False)


def in_page(chat_fn):
    """Wrap a streaming chat function (an async generator) for the page: each update gains an empty notice, and a
    person's error ends the stream with its sentence in the notice instead of a raise.

    The wrapper takes the chat function's arguments; it yields (history, stats, notice). When the error comes
    before any reply was shown, the notice marks the message unanswered, and the page's PUT_BACK_JS step puts it
    back into the box (when the box is still empty), so nothing typed is lost. The box is not an output of the
    streamed updates: Gradio makes a new component for each skipped output of each update.
    """

    # The chat's parameters are spelled out again on purpose: Gradio reads this function's own signature to hand
    # it the inputs and the gr.Request, so `*args` would lose the request.
    async def page_chat(
        message: str,
        history,
        system_prompt: str,
        checkpoint: str,
        temperature: float,
        max_new_tokens: float,
        top_p: float,
        top_k: float,
        repetition_penalty: float,
        seed: float | None,
        stop: str,
        min_p: float,
        adapter_strength: float,
        request: gr.Request = None,
    ):
        shown = False
        try:
            args = (system_prompt, checkpoint, temperature, max_new_tokens, top_p, top_k, repetition_penalty, seed)
            newer = (stop, min_p, adapter_strength)
            async for new_history, stats in chat_fn(message, history, *args, *newer, request=request):
                # a reply has begun once the history ends with one (a starting app first shows the message alone)
                shown = bool(new_history) and new_history[-1].get("role") == "assistant"
                yield new_history, stats, NO_NOTICE
        except (gr.Error, WorkbenchError) as exc:
            yield gr.skip(), "" if shown else gr.skip(), notice_html(exc, unanswered=not shown)

    return page_chat
