"""Tests of the remote-server fixtures themselves (tests/fixtures/remote.py), seen through the `openai` client.

The proxy must stream as it receives, retry faults must look to the client as a real server's would, and a
slow, dead or key-guarded server must raise what the client raises for them. Tests on llama.cpp's server
(the real embedded model) are marked slow; the others point the proxy at a dead port, since the fault
answers before anything is forwarded. Run: `.venv/bin/python -m pytest -q tests/generation/test_remote_fixtures.py`.
"""

from __future__ import annotations

import json
import time
import urllib.request

import openai
import pytest

from tests.fixtures.remote import dead_port

MESSAGES = [{"role": "user", "content": "Tell me about the sea."}]


def client(base_url: str, api_key: str = "unused", **kwargs) -> openai.OpenAI:
    kwargs.setdefault("timeout", 30.0)
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=base_url, api_key=api_key, **kwargs)


def dead_url() -> str:
    return f"http://127.0.0.1:{dead_port()}/v1"


@pytest.mark.slow
def test_proxy_forwards_a_stream_chunk_by_chunk(llama_server, fault_proxy):
    proxy = fault_proxy(llama_server.base_url)
    start = time.monotonic()
    stream = client(proxy.base_url, llama_server.api_key).chat.completions.create(
        model=llama_server.model,
        messages=MESSAGES,
        stream=True,
        max_tokens=64,
        temperature=0,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},  # llama.cpp's own field: always 64 tokens, so decoding takes a while
    )
    arrivals, timings, usage = [], None, None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - start)
        timings = (chunk.model_extra or {}).get("timings", timings)
        usage = chunk.usage or usage

    assert usage is not None and usage.completion_tokens == 64
    assert len(arrivals) >= 32
    # Buffered, every chunk would arrive within milliseconds of the last one. Streamed, the first arrives
    # while the server is still decoding, so arrivals spread over about the server's decoding time.
    decoding = timings["predicted_ms"] / 1000
    assert arrivals[-1] - arrivals[0] >= 0.5 * decoding, (arrivals[:3], arrivals[-1], decoding)
    assert [(s.method, s.path, s.status, s.injected) for s in proxy.seen] == [
        ("POST", "/v1/chat/completions", 200, False)
    ]


@pytest.mark.slow
def test_proxy_passes_a_plain_answer_through_unchanged(llama_server, fault_proxy):
    proxy = fault_proxy(llama_server.base_url)

    def models(base_url: str) -> dict:
        request = urllib.request.Request(
            f"{base_url}/models", headers={"Authorization": f"Bearer {llama_server.api_key}"}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            return json.load(response)

    assert models(proxy.base_url) == models(llama_server.base_url)


@pytest.mark.slow
def test_429_twice_with_retry_after_then_success(llama_server, fault_proxy):
    proxy = fault_proxy(llama_server.base_url)
    proxy.fail(status=429, times=2, retry_after=1.0)
    reply = client(proxy.base_url, llama_server.api_key, max_retries=3).chat.completions.create(
        model=llama_server.model, messages=MESSAGES, max_tokens=4
    )

    assert reply.choices[0].message.content
    assert [(s.status, s.injected) for s in proxy.seen] == [(429, True), (429, True), (200, False)]
    gaps = proxy.gaps()
    assert all(gap >= 1.0 for gap in gaps), gaps  # the client waited what Retry-After said


def test_429_answer_looks_like_openai(fault_proxy):
    proxy = fault_proxy(dead_url())
    proxy.fail(status=429, times=1, retry_after=2)
    with pytest.raises(openai.RateLimitError) as caught:
        client(proxy.base_url).chat.completions.create(model="any", messages=MESSAGES)

    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.body["code"] == "rate_limit_exceeded"


def test_500_forever_fails_after_every_retry(fault_proxy):
    proxy = fault_proxy(dead_url())
    proxy.fail(status=500, times=None)
    with pytest.raises(openai.InternalServerError) as caught:
        client(proxy.base_url, max_retries=2).chat.completions.create(model="any", messages=MESSAGES)

    assert caught.value.status_code == 500
    assert caught.value.body["type"] == "server_error"
    assert [(s.status, s.injected) for s in proxy.seen] == [(500, True)] * 3


def test_delay_beyond_the_client_timeout_times_out(fault_proxy):
    proxy = fault_proxy(dead_url())
    proxy.delay(10.0)
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client(proxy.base_url, timeout=0.5).chat.completions.create(model="any", messages=MESSAGES)

    assert time.monotonic() - start < 5.0


def test_dead_port_refuses_the_connection():
    start = time.monotonic()
    with pytest.raises(openai.APIConnectionError) as caught:
        client(dead_url(), timeout=5.0).chat.completions.create(model="any", messages=MESSAGES)

    assert not isinstance(caught.value, openai.APITimeoutError)  # refused at once, not left hanging
    assert time.monotonic() - start < 3.0


@pytest.mark.slow
def test_wrong_key_is_refused(llama_server):
    with pytest.raises(openai.AuthenticationError) as caught:
        client(llama_server.base_url, "wrong-key").chat.completions.create(
            model=llama_server.model, messages=MESSAGES, max_tokens=2
        )

    assert caught.value.status_code == 401
