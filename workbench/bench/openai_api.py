"""The openai_api case: concurrent requests through the app's `/v1/chat/completions`, streamed and not, against the
raw engine.

    python -m workbench bench --case openai_api

`python app.py` runs as its owner on loopback with the slots it chooses. At 1, 8 and 16 requests sent at the same
moment (64-token replies, temperature 0.7, the chat's default top-p/top-k/repetition penalty sent as the API's
fields), the same prompts go (a) through `/v1/chat/completions` not streamed, (b) the same streamed (SSE, the first
text's arrival timed), and (c) to the raw engine: bare llama.cpp on the same GGUF with the same slots, each request
answered whole with no Python per token (`capacity.Bare`, not streamed). The three take turns going first, round
after round, in one run. Targets (issue 28): tokens/s at least 0.9x the raw engine at each level; p95 first token at
16 requests at most 1.5x.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace

from workbench.bench import BenchContext, Measure
from workbench.bench.capacity import RAW, TEMPERATURE, Bare, level_measures, machine_load, measure_levels, wait_ready
from workbench.bench.chatclient import ChatTiming
from workbench.generation.settings import GenerationSettings

LEVELS = (1, 8, 16)
TOKENS = 64
CASE = "openai_api"


def api_chats(url: str, texts: list[str], tokens: int, stream: bool) -> list[ChatTiming]:
    """Every chat sent at the same moment through `/v1/chat/completions`, one thread each; timings in order (the
    first token of a whole reply is when it arrived)."""
    import httpx

    defaults = GenerationSettings()  # what the bare side samples with (capacity.Bare)
    out: list[ChatTiming | None] = [None] * len(texts)
    start = threading.Barrier(len(texts))

    def one(i: int, client: httpx.Client) -> None:
        body = {
            "model": "base",
            "messages": [{"role": "user", "content": texts[i]}],
            "max_tokens": tokens,
            "temperature": TEMPERATURE,
            "top_p": defaults.top_p,
            "top_k": defaults.top_k,
            "repetition_penalty": defaults.repetition_penalty,
            "stream": stream,
            **({"stream_options": {"include_usage": True}} if stream else {}),
        }
        start.wait()
        started, first, count, error = time.perf_counter(), None, 0, ""
        try:
            with client.stream("POST", f"{url}v1/chat/completions", json=body, timeout=600) as response:
                if not stream:
                    answer = json.loads(response.read())
                    count = answer.get("usage", {}).get("completion_tokens", 0)
                    error = answer.get("error", {}).get("message", "")
                for line in response.iter_lines() if stream else ():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[6:])
                    if chunk.get("usage"):
                        count = chunk["usage"]["completion_tokens"]
                    elif first is None and any(c["delta"].get("content") for c in chunk.get("choices", [])):
                        first = time.perf_counter() - started
        except httpx.HTTPError as exc:
            error = str(exc)
        done = time.perf_counter() - started
        out[i] = ChatTiming(first if stream else done, done, count, error)

    with httpx.Client(trust_env=False, limits=httpx.Limits(max_connections=64)) as client:
        threads = [threading.Thread(target=one, args=(i, client)) for i in range(len(texts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return out  # type: ignore[return-value]


def case_openai_api(ctx: BenchContext, levels: tuple[int, ...] = LEVELS, tokens: int = TOKENS) -> list[Measure]:
    """Concurrent API requests through the running app against the raw engine (see the module docstring)."""
    from workbench.bench.serving import _app

    settings = replace(ctx.settings, admin_open="auto")  # the owner on loopback: no per-visitor limits
    load_before = machine_load()
    with _app(settings, "llamacpp") as app:
        status = wait_ready(app.url)
        bare = Bare(settings, status["slots"])
        sides = {
            "api": lambda texts, n: api_chats(app.url, texts, n, stream=False),
            "api streamed": lambda texts, n: api_chats(app.url, texts, n, stream=True),
            "raw": lambda texts, n: bare.run(texts, n, TEMPERATURE, stream=False),
        }
        results = measure_levels(sides, levels, tokens, rounds=ctx.repeats)
    setup = Measure(
        CASE,
        "setup: slots the app chose",
        status["slots"],
        "slots",
        note=f"{status['model']} on {status['backend']}; {tokens}-token replies, temperature {TEMPERATURE}; "
        f"{ctx.repeats} rounds a level (more at 1 request); api = POST /v1/chat/completions on python app.py; "
        f"raw = xllamacpp in this process, each reply whole; machine {load_before} before, {machine_load()} after",
    )
    rows = [setup]
    for level in results:
        for side in ("api", "api streamed"):
            for row in level_measures(level[side], level["raw"], status["slots"], RAW, CASE):
                if side == "api" and "first token" in row.name:
                    continue  # a whole reply has no first token of its own
                rows.append(replace(row, name=f"{side}: {row.name}"))
    return rows
