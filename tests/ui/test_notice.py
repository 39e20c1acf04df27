"""The page's notice (workbench/ui/notice.py): a person's mistake becomes one escaped sentence in the page, and the
page's chat function turns the API function's raise into that sentence, handing an unanswered message back.

Run: .venv/bin/python -m pytest -q tests/ui/test_notice.py
The browser shows it in tests/e2e/test_chat_browser.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import gradio as gr
import pytest

from tests.fixtures.aio import collect
from workbench.errors import WorkbenchError
from workbench.ui.chat import _need_message, _start_regenerate, _take_message, _undo
from workbench.ui.context import user_error
from workbench.ui.notice import NO_NOTICE, PUT_BACK_JS, UNANSWERED, in_page, notice_html, sentence

ARGS = ("", "base", 0.2, 8, 0.9, 50, 1.1, -1, "", 0.0, 1.0)  # system prompt .. stop strings, min-p, strength
SKIP = gr.skip()


def test_the_notice_is_the_sentence_escaped_and_redaction_kept():
    html = notice_html(user_error(WorkbenchError("No adapter called '<b>x' & co.")))
    assert "'&lt;b&gt;x' &amp; co." in html and "<b>" not in html and 'role="alert"' in html
    assert sentence(user_error(WorkbenchError("a & b"))) == "a & b"  # unescaped once, escaped once: as typed
    assert notice_html("") == NO_NOTICE


def test_a_raise_before_the_reply_becomes_the_notice_and_the_message_goes_back():
    async def chat(message, history, *args, request=None):
        raise user_error(WorkbenchError("The limit of 3 replies per minute is reached."))
        yield  # a generator, like the real one

    updates = collect(in_page(chat)("Hello", [], *ARGS, request=None))
    assert len(updates) == 1
    history, stats, notice = updates[0]
    assert history == SKIP and stats == SKIP
    assert "The limit of 3 replies per minute is reached." in notice
    assert UNANSWERED in notice  # the page's PUT_BACK_JS step puts the message back (the browser test shows it)
    assert UNANSWERED not in notice_html("A sentence.")


def test_a_raise_while_streaming_keeps_the_partial_reply_and_clears_the_notice_first():
    async def chat(message, history, *args, request=None):
        yield [{"role": "user", "content": message}, {"role": "assistant", "content": "Par"}], "Generating…"
        raise WorkbenchError("The model stopped.")

    first, last = collect(in_page(chat)("Capital?", [], *ARGS, request=None))
    assert first[2] == NO_NOTICE and first[1] == "Generating…"
    assert last[0] == SKIP and last[1] == "" and "The model stopped." in last[2]
    assert UNANSWERED not in last[2]  # answered in part: the message stays out of the box


def test_the_quick_steps_write_the_notice_instead_of_raising():
    assert _take_message("  ")[1:] == ("", notice_html("The message is empty: type something to send."))
    assert _take_message("Hi") == ("", "Hi", NO_NOTICE)
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    assert _undo(history, "") == ([], "Hi", "", NO_NOTICE)  # the removed reply's statistics are cleared
    assert _undo(history, "draft")[1] == SKIP  # a draft in the box is kept
    assert "no message to regenerate or undo" in _undo([], "")[3]
    assert _start_regenerate(history) == ([], "Hi", "", NO_NOTICE)
    assert _start_regenerate([])[1] == ""
    try:
        _need_message("")
    except gr.Error as exc:  # ends the chain quietly: no toast, nothing printed
        assert exc.visible is False and exc.print_exception is False
    else:
        raise AssertionError("an empty message must stop the chain")
    assert _need_message("Hi") is None


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize(
    ("notice", "box", "after"),
    [
        (notice_html("No such adapter.", unanswered=True), "", "Hello"),  # unanswered: back into the empty box
        (notice_html("No such adapter.", unanswered=True), "typed meanwhile", "typed meanwhile"),
        (notice_html("The model stopped."), "", ""),  # answered in part: it stays in the conversation
        (NO_NOTICE, "", ""),
    ],
)
def test_the_pages_put_back_step_returns_only_an_unanswered_message_to_an_empty_box(notice, box, after):
    """PUT_BACK_JS runs in the browser after each page reply (tests/e2e/test_chat_browser.py shows it there)."""
    script = f"console.log(JSON.stringify(({PUT_BACK_JS})({json.dumps(notice)}, 'Hello', {json.dumps(box)})))"
    result = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(result.stdout) == after
