"""The serving_capacity case: many visitors chatting at once through the running app, against bare llama.cpp.

    python -m workbench bench --case serving_capacity

`python app.py` runs as its owner on loopback (no per-visitor limits), on the llama.cpp backend with the slot
count it chooses itself (its `/status` says which). At each level (1, 4, 8, 16 and 32 chats sent at the same
moment, 64-token replies, temperature 0.7), the light client of `workbench.bench.chatclient` sends every chat
through the app's HTTP API (`/gradio_api/queue/join` + `/gradio_api/queue/data`, as a browser does); then the
same prompts (the same token ids) go to the raw engine: bare llama.cpp, the same `xllamacpp` binding on the same
GGUF with the same slots and context, each request answered whole by llama.cpp's C++ loop with no Python per token
(as `llama-server` users get it; its first-token time comes from llama.cpp's own timings), called from one thread
per chat; and to the same bare llama.cpp streamed through a Python callback per token (the anchor before issue 28,
which carries the per-token cost the app pays too, kept as a second row). Each level runs `--repeats` rounds (3 by
default; more where that would leave a level under MIN_CHATS replies per side: 12 rounds of 1 chat), the three
taking turns going first, in one run (an idle llama.cpp server takes no CPU), so a busy machine slows all alike and
the ratios hold. Each chat comes from its own visitor whose page is open (its Gradio session exists; see
`chatclient`).

Per level: total tokens/s (every reply's tokens over the time each round's last one finished), p50/p95 time to
the first text and to the whole reply. Targets (issues 18 and 28), against the raw engine: app tokens/s at 1, 8 and
16 chats >= 0.9x; p95 first-token time at 16 chats <= 1.5x.

`case_slot_choice` repeats the measurement behind the default slot count (`config.auto_slots`).

On a machine shared with other work, llama.cpp's threads (which wait for each other at every step) slow down
far more than their share; `WORKBENCH_THREADS=1` gives steadier ratios there (both sides use it).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

from workbench.bench import BenchContext, Measure
from workbench.bench.chatclient import ChatTiming, chat_endpoint, run_chats
from workbench.config import Settings

LEVELS = (1, 4, 8, 16, 32)
TOKENS = 64
TEMPERATURE = 0.7
SUBJECTS = ("a dragon who learns to cook", "a knight who fears the dark", "a robot who paints", "a lost pirate")
CASE = "serving_capacity"
# At least this many chats per side at each level: a level of 1 chat with 3 rounds gave 3 samples, so its p95
# was its slowest reply and its ratio moved by 0.05 between runs on a quiet machine.
MIN_CHATS = 12


def messages(n: int, offset: int = 0) -> list[str]:
    """`n` distinct chat messages (no two share a cached prompt beyond the chat template's opening)."""
    return [f"Story {offset + i}: write a long story about {SUBJECTS[(offset + i) % len(SUBJECTS)]}." for i in range(n)]


@dataclass
class Level:
    """One level's chats, by the app or by bare llama.cpp: one list of timings per round."""

    concurrency: int
    rounds: list[list[ChatTiming]]

    @property
    def chats(self) -> list[ChatTiming]:
        return [c for chats in self.rounds for c in chats]

    @property
    def errors(self) -> list[str]:
        return [c.error for c in self.chats if c.error]

    @property
    def tokens_per_s(self) -> float:
        """Every reply's tokens over the time each round took until its last reply finished."""
        return sum(c.tokens for c in self.chats) / sum(max(c.done_s for c in chats) for chats in self.rounds)

    def quantile(self, what: str, q: float) -> float:
        """Nearest-rank q-quantile of `first_s` or `done_s` over the answered chats."""
        values = sorted(getattr(c, what) for c in self.chats if getattr(c, what) is not None and not c.error)
        if not values:
            return math.nan
        return values[max(0, math.ceil(q * len(values)) - 1)]


# --- bare llama.cpp ---------------------------------------------------------------------------------------------


class Bare:
    """llama.cpp on the app's GGUF with the app's slots and context, fed the app's prompt token ids."""

    def __init__(self, settings: Settings, slots: int) -> None:
        import xllamacpp as xl

        from workbench.generation.backends.llamacpp import context_for, server_params
        from workbench.generation.fetch import local_file
        from workbench.generation.loading import load_tokenizer
        from workbench.registry import resolve_base

        base = local_file(resolve_base(settings))
        self.context = context_for(base, settings)
        self.tokenizer = load_tokenizer(base, settings)
        self.server = xl.Server(server_params(base, settings, slots, self.context))

    def prompt(self, message: str) -> list[int]:
        """The token ids the app's engine makes of a new chat with this message (no system prompt)."""
        from workbench.generation.settings import conversation

        encoded = self.tokenizer.apply_chat_template(
            conversation([], message, ""), add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return list(encoded["input_ids"])

    def _one(self, body: dict[str, Any], started: float, out: list, index: int) -> None:
        marks: list[float] = []
        state: dict[str, Any] = {"tokens": None, "error": "", "timings": None}

        def on_chunk(chunk: Any) -> bool:
            if not isinstance(chunk, dict) or "choices" not in chunk:
                state["error"] = str(chunk)[:200]
                return True
            choice = chunk["choices"][0]
            if choice.get("finish_reason"):
                state["tokens"] = (chunk.get("usage") or {}).get("completion_tokens")
                state["timings"] = chunk.get("timings")
            elif choice.get("text"):
                marks.append(time.perf_counter())
            return False

        self.server.handle_completions(body, on_chunk)
        done = time.perf_counter() - started
        tokens = state["tokens"] if state["tokens"] is not None else len(marks)
        first = marks[0] - started if marks else first_from_timings(done, state["timings"])
        out[index] = ChatTiming(first, done, tokens, state["error"])

    def run(self, texts: list[str], tokens: int, temperature: float, stream: bool = True) -> list[ChatTiming]:
        """Every chat at the same moment, one thread each (as the app's Gradio workers do); timings in order.
        With `stream` False each request is answered whole by llama.cpp's C++ loop with no Python per token (as
        `llama-server` users get it): the raw engine; its first-token time comes from llama.cpp's own timings."""
        import random

        from workbench.generation.backends.base import Extras
        from workbench.generation.backends.llamacpp import request_body
        from workbench.generation.settings import GenerationSettings

        settings = GenerationSettings(temperature=temperature, max_new_tokens=tokens)
        bodies = [
            request_body(
                SimpleNamespace(
                    prompt_ids=self.prompt(t), settings=settings, seed=random.randrange(2**31), extras=Extras()
                ),
                self.context,
            )
            for t in texts
        ]
        for body in bodies:
            body["stream"] = stream
        out: list[Any] = [None] * len(texts)
        started = time.perf_counter()
        threads = [threading.Thread(target=self._one, args=(b, started, out, i)) for i, b in enumerate(bodies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return out


def first_from_timings(done: float, timings: dict[str, Any] | None) -> float | None:
    """When a non-streamed reply's first token was made: its end less llama.cpp's decode time after that token.

    llama.cpp starts `predicted_ms` when it samples the first token (a 1-token reply reports 0 ms), so it spans the
    `predicted_n - 1` tokens after it. What came before the first token, the wait for a slot and the prompt, stays in.
    """
    if not timings or not timings.get("predicted_n"):
        return None
    return max(done - timings["predicted_ms"] / 1000, 0.0)


# --- the case ---------------------------------------------------------------------------------------------------


def machine_load() -> str:
    """The machine's 1-minute load average over its cores, for a note: these cases' ratios hold under a steady load
    (both sides take turns), but a run on a machine shared with other work says so beside its figures."""
    import os

    try:
        load = os.getloadavg()[0]
    except OSError:  # not on every platform
        return "load unknown"
    return f"load {load:.1f} on {os.cpu_count()} cores"


def wait_ready(url: str, timeout: float = 600.0) -> dict[str, Any]:
    """The app's `/status` once it says the model is ready (raises with its error when loading failed, or when it
    was not ready within `timeout` seconds; a `/status` that takes over 10 s to answer counts as not ready yet)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = httpx.get(f"{url}status", timeout=10, trust_env=False).json()
        except httpx.TimeoutException:  # a loading app on a busy machine may take longer to answer: ask again
            continue
        if status.get("ready"):
            return status
        if status.get("error"):
            raise RuntimeError(f"the app could not load its model: {status['error']}")
        time.sleep(0.25)
    raise RuntimeError(f"the app was not ready within {timeout:.0f} s")


def measure_levels(
    sides: dict[str, Callable[[list[str], int], list[ChatTiming]]],
    levels: tuple[int, ...],
    tokens: int,
    rounds: int = 1,
    min_chats: int = MIN_CHATS,
) -> list[dict[str, Level]]:
    """Each side's Level per level (`sides`: name -> run(texts, tokens)), over `rounds` rounds (more where that
    would give a level fewer than `min_chats` chats); the sides take turns going first, so that a drifting machine
    load favours none. Every round's prompts are new to every side."""
    for run in sides.values():
        run(messages(1, 10_000), 8)  # warm up
    results, offset, turn = [], 0, 0
    names = list(sides)
    for n in levels:
        level = {name: Level(n, []) for name in names}
        for _ in range(max(rounds, math.ceil(min_chats / n))):
            texts = messages(n, offset)
            offset += n
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                level[name].rounds.append(sides[name](texts, tokens))
            turn += 1
        results.append(level)
    return results


def app_sides(url: str, bare: Bare) -> dict[str, Callable[[list[str], int], list[ChatTiming]]]:
    """The chat through the app, the raw engine (non-streamed bare llama.cpp) and the streamed bare one."""
    endpoint = chat_endpoint(url)
    return {
        "app": lambda texts, n: run_chats(url, texts, max_new_tokens=n, temperature=TEMPERATURE, endpoint=endpoint),
        "raw": lambda texts, n: bare.run(texts, n, TEMPERATURE, stream=False),
        "bare": lambda texts, n: bare.run(texts, n, TEMPERATURE),
    }


RAW = "raw llama.cpp (not streamed)"
STREAMED = "bare llama.cpp, streamed"


def level_measures(app: Level, bare: Level, slots: int, anchor: str = RAW, case: str = CASE) -> list[Measure]:
    """The rows of one level: throughput, first-token and completion quantiles, each against an anchor (the raw
    engine carries the targets; the streamed bare llama.cpp is a second reading)."""
    n = app.concurrency
    targets = anchor == RAW
    anchor = f"{anchor}, {slots} slots"
    throughput_target = "target: ratio >= 0.9" if n in (1, 8, 16) and targets else ""
    errors = f"; {len(app.errors)} app errors: {app.errors[0]}" if app.errors else ""
    rows = [
        Measure.against(
            case,
            f"{n:>2} chats: total tokens/s",
            app.tokens_per_s,
            "tok/s",
            anchor,
            bare.tokens_per_s,
            f"{throughput_target}{errors}".lstrip("; "),
        )
    ]
    for what, label in (("first_s", "first token"), ("done_s", "completion")):
        for q in (0.5, 0.95):
            target = "target: ratio <= 1.5" if (n, what, q) == (16, "first_s", 0.95) and targets else ""
            rows.append(
                Measure.against(
                    case,
                    f"{n:>2} chats: p{int(q * 100)} {label}",
                    app.quantile(what, q),
                    "s",
                    anchor,
                    bare.quantile(what, q),
                    target,
                )
            )
    return rows


def case_serving_capacity(ctx: BenchContext, levels: tuple[int, ...] = LEVELS, tokens: int = TOKENS) -> list[Measure]:
    """Concurrent chats through the running app against bare llama.cpp with the same slots (see the module)."""
    from workbench.bench.serving import _app

    settings = replace(ctx.settings, admin_open="auto")  # the owner on loopback: no per-visitor limits
    load_before = machine_load()
    with _app(settings, "llamacpp") as app:
        status = wait_ready(app.url)
        bare = Bare(settings, status["slots"])
        results = measure_levels(app_sides(app.url, bare), levels, tokens, rounds=ctx.repeats)
    setup = Measure(
        CASE,
        "setup: slots the app chose",
        status["slots"],
        "slots",
        note=f"{status['model']} on {status['backend']}, llama.cpp threads: {settings.threads or 'its default'}; "
        f"{tokens}-token replies, temperature {TEMPERATURE}; each level's chats sent at once ({ctx.repeats} rounds, "
        f"more at low levels for {MIN_CHATS} chats per level), "
        "each from its own visitor with the page open; "
        "app = python app.py through its HTTP API (SSE); raw = xllamacpp in this process, each reply whole (no "
        "Python per token; first token from llama.cpp's timings); streamed bare = the same with a callback per token; "
        f"machine {load_before} before, {machine_load()} after",
    )
    rows = [setup]
    for level in results:
        for anchor, side in ((RAW, "raw"), (STREAMED, "bare")):
            rows += level_measures(level["app"], level[side], status["slots"], anchor)
    return rows


SLOT_COUNTS = (2, 4, 6, 8, 12, 16)


def case_slot_choice(ctx: BenchContext, counts: tuple[int, ...] = SLOT_COUNTS, tokens: int = TOKENS) -> list[Measure]:
    """Bare llama.cpp's total tokens/s with 1, 8 and 16 chats at once for each slot count, against the slot count
    WORKBENCH_SLOTS=0 chooses on this machine: the measurement behind `config.auto_slots`. Each count runs alone
    (one server at a time)."""
    from workbench.config import auto_slots, usable_cores

    chosen = auto_slots()
    rates: dict[int, dict[int, float]] = {}
    for slots in sorted(set(counts) | {chosen}):
        bare = Bare(ctx.settings, slots)
        bare.run(messages(2, 20_000), 8, TEMPERATURE)  # warm up
        rates[slots] = {
            n: Level(n, [bare.run(messages(n, 1000 * slots + n), tokens, TEMPERATURE)]).tokens_per_s for n in (1, 8, 16)
        }
        del bare
    measures = []
    for slots, by_level in rates.items():
        for n, rate in by_level.items():
            note = "the auto choice" if slots == chosen else ""
            measures.append(
                Measure.against(
                    "slot_choice",
                    f"{slots:>2} slots, {n:>2} chats: total tokens/s",
                    rate,
                    "tok/s",
                    f"{chosen} slots (auto, {usable_cores()} cores)",
                    rates[chosen][n],
                    note,
                )
            )
    return measures
