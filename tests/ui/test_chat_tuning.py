"""The Chat tab's token view picks the last exchange out of a chat history (text parts included) and refuses a
history without a reply in one sentence.

Run: .venv/bin/python -m pytest -q tests/ui/test_chat_tuning.py
"""

from __future__ import annotations

import pytest

from workbench.errors import WorkbenchError
from workbench.ui.chat_tuning import last_exchange


def test_last_exchange_is_the_prompt_and_reply_the_model_saw():
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Paris."}]},
    ]
    messages, reply = last_exchange(history, "Be brief.")
    assert reply == "Paris."
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Capital of France?"},
    ]


@pytest.mark.parametrize(
    ("history", "needle"),
    [
        ([], "no reply to read yet"),
        ([{"role": "user", "content": "Hi"}], "no reply to read yet"),
        ([{"role": "assistant", "content": "Hello"}], "no message before it"),
        ("not a list", "must be a list of messages"),
        ([{"content": "no role"}], "must be a list of messages"),
    ],
)
def test_a_history_without_a_reply_gets_one_sentence(history, needle):
    with pytest.raises(WorkbenchError, match=needle):
        last_exchange(history, "")
