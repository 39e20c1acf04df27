"""The `/v1` API on the running Gradio app (what a Space serves), behind its HTTP guard, as a public app: one app start
for the module, admin closed and one trusted proxy, so a test is any visitor by its X-Forwarded-For entry.

The owner reaches it with a key (WORKBENCH_API_KEYS); visitors are let in (WORKBENCH_API_OPEN=1) within the chat's
limits: their reply rate, the tokens per reply, the checkpoints the owner offers them.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request

import pytest

from tests.fixtures.servers import ROOT, free_port, public_app_env, server_process
from workbench.registry import EMBEDDED_NAME

pytestmark = pytest.mark.slow

KEY = "wbk-app-0123456789abcdef"
RATE = 3
FRANCE = [
    {"role": "system", "content": "Answer in one sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture(scope="module")
def app(wb_env, tmp_path_factory):
    root = tmp_path_factory.mktemp("api-app")
    port = free_port()
    settings = {"api_keys": KEY, "api_open": "1", "rate_limit": str(RATE), "visitor_max_new_tokens": "32"}
    env = public_app_env(wb_env, port, f"sqlite:///{root / 'store.db'}", **settings)
    url = f"http://127.0.0.1:{port}"
    with server_process([sys.executable, str(ROOT / "app.py")], f"{url}/", env, "api_app.log") as proc:
        deadline = time.monotonic() + 300
        while not json.load(urllib.request.urlopen(f"{url}/status", timeout=10))["ready"]:
            assert time.monotonic() < deadline and proc.poll() is None, "the model did not load"
            time.sleep(0.5)
        yield url


def openai_client(url: str, key: str = "unused", address: str | None = None):
    from openai import OpenAI

    headers = {"X-Forwarded-For": address} if address else {}
    return OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=300, default_headers=headers)


def test_the_owner_calls_the_app_with_a_key_sync_and_streamed(app):
    with openai_client(app, KEY, "198.51.100.1") as client:
        reply = client.chat.completions.create(model=EMBEDDED_NAME, messages=FRANCE, temperature=0, max_tokens=12)
        text = reply.choices[0].message.content
        assert "Paris" in text
        stream = client.chat.completions.create(
            model="base", messages=FRANCE, temperature=0, max_tokens=12, stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == text
        completion = client.completions.create(
            model="base", prompt="The capital of France is", max_tokens=3, temperature=0
        )
        assert completion.choices[0].text and completion.usage.completion_tokens <= 3


def test_a_visitor_gets_the_chats_limits(app):
    import openai

    with openai_client(app, address="198.51.100.2") as client:
        assert [m.id for m in client.models.list().data][:2] == [EMBEDDED_NAME, "base"]
        with pytest.raises(openai.BadRequestError, match="limit here is 32"):
            client.chat.completions.create(model="base", messages=FRANCE, max_tokens=33)
        for _ in range(RATE):
            client.chat.completions.create(model="base", messages=FRANCE, max_tokens=2)
        with pytest.raises(openai.RateLimitError, match="limit of 3 replies per minute"):
            client.chat.completions.create(model="base", messages=FRANCE, max_tokens=2)
    # A key that is not the server's gives a visitor's rights where the API is open (clients always send one).
    with openai_client(app, "wbk-not-the-key-0123456789", "198.51.100.3") as client:
        with pytest.raises(openai.PermissionDeniedError, match="for the owner"):
            client.chat.completions.create(
                model="base", messages=FRANCE, max_tokens=2, extra_headers={"X-Workbench-Store": "1"}
            )
