"""What `serve` does to keep each event cheap: matplotlib, which Gradio imports on every event call, marked absent
where it is not installed, so the import fails at once instead of searching sys.path each time."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from workbench.ui.demo import mark_missing_matplotlib


def test_a_missing_matplotlib_is_marked_absent_and_its_import_still_fails(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # restored (or removed again) after the test
    del sys.modules["matplotlib"]
    installed = importlib.util.find_spec("matplotlib") is not None
    assert mark_missing_matplotlib() is not installed
    if installed:  # left alone: the real one imports as before
        assert "matplotlib" not in sys.modules
        return
    assert "matplotlib" in sys.modules and sys.modules["matplotlib"] is None
    with pytest.raises(ImportError):
        import matplotlib  # noqa: F401
    assert importlib.util.find_spec("matplotlib") is None  # what libraries that probe for it see: not installed
    assert mark_missing_matplotlib() is False  # once is enough


HISTORIES = [
    [],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}],
    [
        {"role": "user", "content": [{"type": "text", "text": "  Write code:"}]},  # as the page sends it back
        {"role": "assistant", "content": "\n  def f():\n\treturn 1\n\n"},
        {"role": "user", "content": "Thanks! é 🙂"},
        {"role": "assistant", "content": " Paris."},
    ],
]


@pytest.mark.parametrize("history", HISTORIES)
def test_the_chat_sends_the_history_as_the_chatbot_would(history):
    """The reply events skip Gradio's postprocessing (a worker thread per output per update): `shown` makes what the
    Chatbot's own postprocess makes of text messages, also when it reuses the messages of the update before."""
    import gradio as gr

    from workbench.generation.settings import plain_history
    from workbench.ui.chat import shown

    expected = gr.Chatbot().postprocess(plain_history(history)).model_dump()
    assert shown(history) == expected
    made: list = []
    assert shown(history, made) == expected and shown(history, made) == expected
    if history:
        grown = [*plain_history(history)[:-1], {"role": "assistant", "content": "more text"}]
        again = shown(grown, made)
        assert again == gr.Chatbot().postprocess(grown).model_dump()
        assert all(a is b for a, b in zip(again[:-1], shown(history, made)[:-1], strict=True))  # made once


def test_the_reply_events_skip_gradios_processing_and_run_on_its_event_loop():
    import inspect

    from workbench.config import Settings
    from workbench.ui.demo import build_demo

    demo = build_demo(Settings(backend="llamacpp"))
    chats = [fn for fn in demo.fns.values() if fn.concurrency_id == "generate" and fn.name in ("chat", "page_chat")]
    assert len(chats) == 4  # Enter, Send and Regenerate on the page, and the "chat" endpoint
    for fn in chats:
        assert not fn.preprocess and not fn.postprocess and inspect.isasyncgenfunction(fn.fn), fn.api_name
