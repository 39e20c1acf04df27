"""Benchmark cases of serving on the llama.cpp backend, each against the anchor its issue names.

- llamacpp_decode: the engine's streamed decode (200 tokens, batch 1) against bare llama.cpp, the same
  binding (`xllamacpp`) on the same GGUF file called directly; without and with an adapter.
- llamacpp_ttft: time to first token for a prompt of about 40 tokens, against the same bare call.
- app_concurrency: four visitors chatting at once through the running app (gradio_client, 100 tokens each),
  on the llama.cpp backend against the transformers backend, and against one visitor alone.
- batched_jobs: a generation suite (16 examples, 128 new tokens) and a 20-prompt Compare run over two
  checkpoints, submitted together on llama.cpp, against the same requests one at a time on transformers.
- agreement: teacher-forced agreement between the backends on Vicuna-bench prompts (not a speed).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from workbench.bench import STORY, BenchContext, Measure
from workbench.config import REPO_ROOT, Settings
from workbench.generation.settings import GenerationSettings

DECODE_TOKENS = 200
ASK = "What is the capital of France? Please answer briefly and explain why it became the capital."
QUESTION = [{"role": "user", "content": ASK}]
VISITORS = [
    f"Write a long story about {who}."
    for who in ("a dragon who learns to cook", "a knight who fears the dark", "a robot who paints", "a lost pirate")
]


def _engine(settings: Settings, backend: str, adapters_dir: Path | None = None) -> Any:
    from workbench.generation.engine import ChatEngine

    if adapters_dir is not None:
        settings = replace(settings, adapters_dir=adapters_dir)
    return ChatEngine.load(settings, backend=backend)


@contextlib.contextmanager
def _bench_adapter(settings: Settings) -> Iterator[Path]:
    """A temporary adapters folder holding one random adapter "bench-lora" for the configured base."""
    from workbench.generation.loading import model_source
    from workbench.registry import resolve_base
    from workbench.training.synthetic import random_adapter

    base = resolve_base(settings)
    source, _, _ = model_source(base, settings)
    with tempfile.TemporaryDirectory(prefix="bench-adapters-") as tmp:
        random_adapter(Path(source), Path(tmp) / "bench-lora", base.name, scale=0.3, modules=("q_proj", "v_proj"))
        yield Path(tmp)


def _bare_server(engine: Any, lora: Path | None = None) -> Any:
    """llama.cpp on the engine's GGUF, called directly: the same slots and context, optionally one adapter."""
    import xllamacpp as xl

    params = xl.CommonParams()
    params.model.path = engine.base.source
    params.n_parallel = engine.slots
    params.n_ctx = engine.context_window * engine.slots
    params.verbosity = -1
    if lora is not None:
        params.lora_adapters = [xl.CommonAdapterLoraInfo(str(lora), 1.0)]
    return xl.Server(params)


def _bare_stream(server: Any, prompt: list[int], max_tokens: int, lora: bool = False) -> tuple[float, float, int]:
    """(time to first token, decode seconds after it, tokens) of one greedy streamed bare request."""
    marks: list[float] = []
    body: dict[str, Any] = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    if lora:
        body["lora"] = [{"id": 0, "scale": 1.0}]

    def on_chunk(chunk: Any) -> bool:
        if chunk.get("choices") and not chunk["choices"][0].get("finish_reason"):
            marks.append(time.perf_counter())
        return False

    started = time.perf_counter()
    server.handle_completions(body, on_chunk)
    return marks[0] - started, marks[-1] - marks[0], len(marks)


def _engine_stream(engine: Any, messages: list, max_tokens: int, adapter: str | None = None):
    """(time to first token, decode seconds after it, tokens) of one greedy streamed engine reply."""
    marks: list[float] = []
    started = time.perf_counter()
    reply = engine.stream(messages, GenerationSettings(temperature=0, max_new_tokens=max_tokens), adapter=adapter)
    for _ in reply:
        marks.append(time.perf_counter())
    first = started + reply.stats.ttft_s
    return reply.stats.ttft_s, (marks[-1] if marks else first) - first, reply.stats.new_tokens


def _decode_rate(runs: list[tuple[float, float, int]]) -> float:
    return statistics.median((n - 1) / s for _, s, n in runs if s > 0)


def case_llamacpp_decode(ctx: BenchContext) -> list[Measure]:
    """Engine decode tokens/s on llama.cpp against bare llama.cpp (same file, same binding), without and with
    an adapter. Target: ratio >= 0.9 in both. The two run one after the other, never side by side: an idle
    llama.cpp server's threads keep polling for work for a while and would slow the other one down."""
    from workbench.generation.lora_gguf import cached_gguf

    measures = []
    with _bench_adapter(ctx.settings) as adapters:
        for adapter in (None, "bench-lora"):
            engine = _engine(ctx.settings, "llamacpp", adapters)
            prompt, _ = engine.fit(STORY, DECODE_TOKENS)
            ours = [_engine_stream(engine, STORY, DECODE_TOKENS, adapter) for _ in range(ctx.repeats + 1)][1:]
            engine.close()
            lora = cached_gguf(adapters / adapter, Path(engine.base.source)) if adapter else None
            bare = _bare_server(engine, lora)
            theirs = [_bare_stream(bare, prompt, DECODE_TOKENS, lora is not None) for _ in range(ctx.repeats + 1)][1:]
            del bare
            label = f"with adapter {adapter}" if adapter else "base model"
            measures.append(
                Measure.against(
                    "llamacpp_decode",
                    f"engine decode tok/s, {label} ({ours[0][2]} tokens)",
                    _decode_rate(ours),
                    "tok/s",
                    "bare llama.cpp",
                    _decode_rate(theirs),
                    "target: ratio >= 0.9",
                )
            )
    return measures


def _questions(n: int) -> list[list[dict[str, str]]]:
    """Distinct ~40-token prompts, so that no request finds its prompt already evaluated."""
    return [[{"role": "system", "content": f"Case {i}: answer briefly."}, *QUESTION] for i in range(n)]


def case_llamacpp_ttft(ctx: BenchContext) -> list[Measure]:
    """Time to first token for a ~40-token prompt, engine against bare llama.cpp (each prompt new to both).
    Target: ratio <= 1.5."""
    engine = _engine(ctx.settings, "llamacpp")
    questions = _questions(ctx.repeats * 6 + 2)
    prompts = [engine.fit(q, 8)[0] for q in questions]
    ours = [_engine_stream(engine, q, 8)[0] for q in questions[::2]][1:]
    engine.close()
    bare = _bare_server(engine)
    theirs = [_bare_stream(bare, p, 8)[0] for p in prompts[1::2]][1:]
    return [
        Measure.against(
            "llamacpp_ttft",
            f"time to first token, {len(prompts[0])}-token prompt",
            statistics.median(ours),
            "s",
            "bare llama.cpp",
            statistics.median(theirs),
            "target: ratio <= 1.5",
        )
    ]


# --- the running app ---------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _app(settings: Settings, backend: str) -> Iterator[SimpleNamespace]:
    """`python app.py` on a free loopback port with this backend; yields its url and pid once it answers."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env.update(replace(settings, backend=backend).to_env())
    env.update(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False")
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "app.py")], env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 300
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"app.py exited: {log.read()[-2000:].decode(errors='replace')}")
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(url, timeout=2).close()
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("app.py did not answer within 300 s")
                time.sleep(0.5)
            yield SimpleNamespace(url=url, pid=proc.pid)
        finally:
            stop_process(proc)


def _chat(url: str, message: str, tokens: int) -> tuple[float, int]:
    """One visitor's chat through the app's "chat" endpoint: (seconds until the reply finished, tokens)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    try:
        started = time.perf_counter()
        _, stats = client.predict(message, [], "", "base", 0.0, tokens, 0.95, 50, 1.0, None, "", api_name="/chat")
        return time.perf_counter() - started, int(stats.split(" token")[0])
    finally:
        client.close()


def _visitors(url: str, n: int, tokens: int) -> list[tuple[float, int]]:
    """`n` visitors sending their chats at the same moment; each one's (finish seconds, tokens)."""
    results: list[tuple[float, int]] = [(0.0, 0)] * n
    start = threading.Barrier(n)

    def visit(i: int) -> None:
        start.wait()
        results[i] = _chat(url, VISITORS[i % len(VISITORS)], tokens)

    threads = [threading.Thread(target=visit, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def case_app_concurrency(ctx: BenchContext, visitors: int = 4, tokens: int = 100) -> list[Measure]:
    """Four concurrent 100-token chats through the running app. Targets: the last reply on llama.cpp finishes
    in at most a quarter of the time the same four take on transformers; llama.cpp's total tokens/s with four
    chats is at least 1.2x its single-chat tokens/s."""
    with _app(ctx.settings, "transformers") as app:
        _chat(app.url, VISITORS[0], 8)  # the model loads on the first chat
        slow = _visitors(app.url, visitors, tokens)
    with _app(ctx.settings, "llamacpp") as app:
        _chat(app.url, VISITORS[0], 8)
        alone = [_chat(app.url, VISITORS[0], tokens) for _ in range(ctx.repeats)]
        fast = _visitors(app.url, visitors, tokens)
    last_slow, last_fast = max(s for s, _ in slow), max(s for s, _ in fast)
    single = statistics.median(n / s for s, n in alone)
    together = sum(n for _, n in fast) / last_fast
    return [
        Measure(
            "app_concurrency", f"transformers: {visitors} chats, last finished", last_slow, "s", note=_spread(slow)
        ),
        Measure.against(
            "app_concurrency",
            f"llama.cpp: {visitors} chats, last finished",
            last_fast,
            "s",
            "transformers, same chats",
            last_slow,
            f"target: ratio <= 0.25; {_spread(fast)}",
        ),
        Measure.against(
            "app_concurrency",
            f"llama.cpp: total tok/s with {visitors} chats",
            together,
            "tok/s",
            "one chat alone",
            single,
            "target: ratio >= 1.2",
        ),
    ]


def _spread(results: list[tuple[float, int]]) -> str:
    return "finished at " + ", ".join(f"{s:.1f}" for s, _ in sorted(results)) + " s"


# --- jobs with many prompts --------------------------------------------------------------------------------


def _one_at_a_time(engine: Any, requests: list) -> float:
    """Seconds to answer `requests` (messages, settings, adapter) one after another: today's path."""
    started = time.perf_counter()
    for messages, settings, adapter in requests:
        engine.generate(messages, settings, adapter=adapter)
    return time.perf_counter() - started


def case_batched_jobs(ctx: BenchContext, prompts: int = 20) -> list[Measure]:
    """A generation suite and a Compare run over two checkpoints, submitted together on llama.cpp, against the
    same requests one at a time on transformers. Target: at least 5x faster."""
    from workbench.evaluation.runner import run_suite
    from workbench.evaluation.suites import find_suite
    from workbench.store import Store
    from workbench.studio import compare
    from workbench.studio.promptsets import load_shipped

    suite = find_suite("self_instruct_user")
    examples = suite.load_examples()
    suite_requests = [(ex.prompt, suite.generation, "base") for ex in examples]
    settings = GenerationSettings(temperature=0, max_new_tokens=64, seed=0)
    measures = []
    with _bench_adapter(ctx.settings) as adapters, tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        slow_engine = _engine(ctx.settings, "transformers", adapters)
        slow_suite = _one_at_a_time(slow_engine, suite_requests)
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        load_shipped(store, ["vicuna-bench"])
        texts = [p["text"] for p in store.prompts("vicuna-bench")[:prompts]]
        pairs = [(text, checkpoint) for text in texts for checkpoint in ("base", "bench-lora")]
        compare_requests = [([{"role": "user", "content": text}], settings, c) for text, c in pairs]
        slow_compare = _one_at_a_time(slow_engine, compare_requests)
        slow_engine.close()
        del slow_engine

        engine = _engine(ctx.settings, "llamacpp", adapters)
        started = time.perf_counter()
        run_suite(engine, suite, "base")
        fast_suite = time.perf_counter() - started
        started = time.perf_counter()
        counts = compare.run_prompt_set(engine, store, "vicuna-bench", ["base", "bench-lora"], settings, limit=prompts)
        fast_compare = time.perf_counter() - started
        store.close()
    measures.append(
        Measure.against(
            "batched_jobs",
            f"suite {suite.name} ({len(examples)} examples, {suite.generation.max_new_tokens} tokens): speed-up",
            slow_suite / fast_suite,
            "x",
            "",
            1.0,
            f"llama.cpp together {fast_suite:.1f} s; transformers one at a time {slow_suite:.1f} s; target >= 5x",
        )
    )
    measures.append(
        Measure.against(
            "batched_jobs",
            f"Compare run, {prompts} prompts x 2 checkpoints ({settings.max_new_tokens} tokens): speed-up",
            slow_compare / fast_compare,
            "x",
            "",
            1.0,
            f"llama.cpp together {fast_compare:.1f} s ({counts['generated']} generated); "
            f"transformers one at a time {slow_compare:.1f} s; target >= 5x",
        )
    )
    return measures


def case_agreement(ctx: BenchContext, prompts: int = 16, tokens: int = 48) -> list[Measure]:
    """Teacher-forced agreement between llama.cpp and transformers on Vicuna-bench (base, an adapter as trained and
    at strength 0.5: llama.cpp's per-request LoRA scale against peft's scaling)."""
    from workbench.evaluation.parity import agreement
    from workbench.studio.promptsets import read_shipped

    conversations = [[{"role": "user", "content": p["text"]}] for p in read_shipped("vicuna-bench")[:prompts]]
    measures = []
    with _bench_adapter(ctx.settings) as adapters:
        engine = _engine(ctx.settings, "llamacpp", adapters)
        for adapter, strength in ((None, 1.0), ("bench-lora", 1.0), ("bench-lora", 0.5)):
            report = agreement(engine, conversations, max_new_tokens=tokens, adapter=adapter, strength=strength)
            label = f"adapter {adapter}" if adapter else "base model"
            label += f" at strength {strength:g}" if strength != 1 else ""
            measures.append(
                Measure(
                    "agreement",
                    f"same most likely token, {label} ({report.positions} positions)",
                    report.argmax_agreement,
                    "share",
                    note=f"mean NLL llama.cpp {report.mean_nll_llamacpp:.4f}, transformers "
                    f"{report.mean_nll_transformers:.4f}: {report.nll_relative_difference:.2%} apart",
                )
            )
    return measures


def stop_process(proc: subprocess.Popen) -> None:
    """Stop an app the benchmark started: terminate, and kill it when it has not exited in 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
