"""An edit of a chat reply, at the server: kept as a correction only of a reply this server made in this session,
only for the owner or where the owner allowed visitors' edits, bounded and counted like a visitor's other feedback.

Run: .venv/bin/python -m pytest -q tests/ui/test_chat_edits.py
(The edit in a real browser, through to the export: tests/e2e/test_chat_browser.py.)
"""

from __future__ import annotations

import pytest

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.gate.visitor import shell, visitor
from workbench.ui.chat_feedback import EDITS_OFF, NOT_A_REPLY, UNKNOWN_EDIT, Entry, Feedback
from workbench.ui.context import AppContext
from workbench.ui.stores import shared_store

ASKED = [{"role": "user", "content": "What is the capital of France?"}]
HISTORY = [*ASKED, {"role": "assistant", "content": "Lyon."}]


def feedback(tmp_path, **settings) -> Feedback:
    """A public app's feedback (listening on all interfaces: no owner but by token) with one reply made in session
    "s"; host="127.0.0.1" makes this machine's own calls the owner's."""
    fb = Feedback(AppContext(Settings(home=tmp_path, **{"host": "0.0.0.0", **settings})))
    fb.replies.add("s", Entry(ASKED, "Lyon.", "base", {"temperature": 0.7}))
    return fb


def corrections(fb: Feedback) -> list[tuple[str, str]]:
    return [(r["original"], r["corrected"]) for r in shared_store(fb.ctx.settings).correction_rows(current=False)]


def public(fb: Feedback, address: str = "203.0.113.7"):
    return visitor(fb.ctx.settings, address, {"host": "example.org"})


def test_the_owner_corrects_a_reply_and_may_correct_it_again(tmp_path):
    fb = feedback(tmp_path, host="127.0.0.1")
    owner = shell(fb.ctx.settings)
    assert owner.owner
    assert fb.correct("s", HISTORY, 1, "Paris.", owner) == "Paris."
    edited = [*ASKED, {"role": "assistant", "content": "Paris."}]  # the page now shows the corrected text
    fb.correct("s", edited, 1, [{"type": "text", "text": "Paris, on the Seine."}], owner)  # Gradio's parts form
    assert corrections(fb) == [("Lyon.", "Paris."), ("Lyon.", "Paris, on the Seine.")]
    stored = shared_store(fb.ctx.settings).correction_rows()
    assert len(stored) == 1 and stored[0]["corrected"] == "Paris, on the Seine." and stored[0]["model"]
    with pytest.raises(WorkbenchError, match="nothing to correct"):
        fb.correct("s", HISTORY, 1, "Lyon.", owner)


def test_a_visitor_is_refused_unless_the_owner_allowed_edits(tmp_path):
    fb = feedback(tmp_path)
    with pytest.raises(WorkbenchError) as refused:
        fb.correct("s", HISTORY, 1, "Paris.", public(fb))
    assert str(refused.value) == EDITS_OFF
    assert corrections(fb) == []


def test_an_allowed_visitors_edit_is_bounded_and_counted_against_the_vote_limit(tmp_path):
    fb = feedback(tmp_path, visitor_edits=True, vote_limit=1)
    who = public(fb)
    with pytest.raises(WorkbenchError, match="over 8,000 characters, the limit here"):
        fb.correct("s", HISTORY, 1, "x" * 8_001, who)  # a visitor's message size, before anything is counted
    fb.correct("s", HISTORY, 1, "Paris.", who)
    with pytest.raises(WorkbenchError, match="limit of 1 votes per hour"):
        fb.correct("s", HISTORY, 1, "Paris!", who)
    assert corrections(fb) == [("Lyon.", "Paris.")]
    assert shared_store(fb.ctx.settings).correction_rows()[0]["rater"].startswith("anon-")  # the keyed voter id


def test_only_a_reply_this_server_made_in_this_session_can_be_corrected(tmp_path):
    fb = feedback(tmp_path, host="127.0.0.1")
    owner = shell(fb.ctx.settings)
    forged = [*ASKED, {"role": "assistant", "content": "Berlin."}]  # a reply the page made up
    for session, history, index, why in (
        ("s", forged, 1, UNKNOWN_EDIT),
        ("other-session", HISTORY, 1, UNKNOWN_EDIT),  # another browser's reply
        ("s", [{"role": "user", "content": "Hi"}, *HISTORY], 2, UNKNOWN_EDIT),  # a different conversation
        ("s", HISTORY, 0, NOT_A_REPLY),  # the visitor's own message
        ("s", HISTORY, 5, NOT_A_REPLY),
        ("s", HISTORY, "1", NOT_A_REPLY),
        ("s", HISTORY, True, NOT_A_REPLY),
    ):
        with pytest.raises(WorkbenchError) as refused:
            fb.correct(session, history, index, "Paris.", owner)
        assert str(refused.value) == why
    with pytest.raises(WorkbenchError, match="must be text"):
        fb.correct("s", HISTORY, 1, {"text": 5}, owner)
    assert corrections(fb) == []


def page_edit(fb: Feedback):
    """The Chatbot.edit listener `wire_edits` registers, for the app `fb` belongs to."""
    import gradio as gr

    from workbench.ui import chat_feedback

    chat_feedback._FEEDBACK[id(fb.ctx)] = fb
    with gr.Blocks() as demo:
        chatbot, notice = gr.Chatbot(editable="all"), gr.HTML("")
        chat_feedback.wire_edits(fb.ctx, chatbot, notice)
    (fn,) = [f.fn for f in demo.fns.values()]
    return lambda history, index, value, before: fn(
        history, gr.EditData(None, {"index": index, "value": value, "previous_value": before})
    )


def test_the_page_gets_the_edit_or_the_reply_back_with_one_sentence(tmp_path):
    edited = [*ASKED, {"role": "assistant", "content": "Paris."}]  # the page edits its own copy before sending
    # a public app where visitors may not edit, and one where they may (an in-process call is no owner there)
    refused, allowed = feedback(tmp_path), feedback(tmp_path, visitor_edits=True)
    for fb in (refused, allowed):
        fb.replies.add("anonymous", Entry(ASKED, "Lyon.", "base", {}))  # an in-process call's session
    history, notice = page_edit(refused)(edited, 1, "Paris.", "Lyon.")
    assert history == HISTORY and EDITS_OFF in notice and 'role="alert"' in notice
    history, notice = page_edit(allowed)(edited, 1, "Paris.", "Lyon.")
    assert history == edited and notice == "" and corrections(allowed) == [("Lyon.", "Paris.")]
    history, notice = page_edit(allowed)(edited, 1, "Paris.", "Berlin.")  # a reply the server never made
    assert history[1]["content"] == "Berlin." and UNKNOWN_EDIT in notice and len(corrections(allowed)) == 1
