"""Benchmark cases of the leaderboard at scale: 100,000 votes over 7 checkpoints, 200 prompts and 50 raters in a
SQLite store (`workbench.bench.votes`), each against the anchor issue 12 names.

- leaderboard_page: the Leaderboard page's work (what its main() computes; its figures and Streamlit's drawing,
  the same on both paths, are not counted): its first run, a rerun after a filter change (a new selection each
  time) and a plain rerun, against the old row-wise path measured in the same run (every vote read as a row with
  `Store.battles()`, then the filters' options and the standings from rows).
- leaderboard_cli: `python -m workbench leaderboard --json` on the store, cold (a fresh process each time),
  against the same command on a FastChat battle file holding the same votes.

Targets: a rerun under 1 s and a cold render under 3 s at 100,000 votes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workbench.bench import BenchContext, Measure
from workbench.config import REPO_ROOT

SIZE = {"votes": 100_000, "checkpoints": 7, "prompts": 200, "raters": 50}


def _store(folder: Path, size: dict[str, int]) -> str:
    from workbench.bench.votes import fill_votes
    from workbench.store import Store

    url = f"sqlite:///{folder / 'votes.db'}"
    with Store(url) as store:
        fill_votes(store, **size)
    return url


def _row_wise(url: str) -> float:
    """The page's work before issue 12: every vote as a row, options and standings computed from rows."""
    from workbench.ratings.leaderboard import filter_options, filter_ratings, standings
    from workbench.store import Store

    start = time.perf_counter()
    with Store(url) as store:
        battles, likert = store.battles(), store.likert()
        filter_options(battles, likert)
        standings(filter_ratings(battles), filter_ratings(likert), bootstrap=1000, seed=0)
        battles[battles["reason"].notna()].tail(20)
    return time.perf_counter() - start


def _page_work(store, raters: list[str] | None) -> float:
    """What pages/leaderboard.py's main() computes on each run (not its figures or Streamlit's drawing, which
    are the same on both paths and sit above the benchmark's layer)."""
    from workbench.ratings.snapshot import ranked, snapshot

    start = time.perf_counter()
    snap = snapshot(store)
    snap.options()
    view = ranked(snap, raters=raters, bootstrap=1000, seed=0)
    store.vote_reasons(view.reason_ids)
    return time.perf_counter() - start


def case_leaderboard_page(ctx: BenchContext, size: dict[str, int] | None = None) -> list[Measure]:
    """The Leaderboard page's work on its first run and on reruns, against the old row-wise path on the same votes.

    Measured without Streamlit (the benchmark never imports it): the store is opened and read, the filters'
    options and standings computed and the newest reasons read, as the page's main() does.
    """
    from workbench.store import Store

    size = size or SIZE
    label = f"{size['votes']:,} votes"
    with tempfile.TemporaryDirectory() as tmp:
        url = _store(Path(tmp), size)
        start = time.perf_counter()
        with Store(url) as store:
            cold = time.perf_counter() - start + _page_work(store, None)
            raters = sorted(store.raters())
            changes = [_page_work(store, raters[i : i + 25]) for i in range(ctx.repeats)]
            _page_work(store, raters[:3])  # a selection seen before: the plain reruns below find it cached
            plain = [_page_work(store, raters[:3]) for _ in range(ctx.repeats)]
        anchor = _row_wise(url)
    change, rerun = sorted(changes)[len(changes) // 2], sorted(plain)[len(plain) // 2]
    old = "row-wise page work"
    return [
        Measure.against("lb_page", f"first run, {label}", cold, "s", old, anchor, "target < 3 s"),
        Measure.against("lb_page", f"rerun after a filter change, {label}", change, "s", old, anchor, "target < 1 s"),
        Measure.against("lb_page", f"rerun, same selection, {label}", rerun, "s", old, anchor, "target < 1 s"),
    ]


def _battle_file(url: str, path: Path) -> None:
    from workbench.store import Store

    with Store(url) as store:
        battles = store.battles()
    columns = ["question_id", "model_a", "model_b", "winner", "judge", "turn", "anony", "tstamp"]
    battles[columns].to_json(path, orient="records", lines=True)


def _cli(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "workbench", "leaderboard", "--json", *args],
        env=env,
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def case_leaderboard_cli(ctx: BenchContext, size: dict[str, int] | None = None) -> list[Measure]:
    """`leaderboard --json` on the store against the same command on a FastChat battle file of the same votes."""
    size = size or SIZE
    with tempfile.TemporaryDirectory() as tmp:
        url = _store(Path(tmp), size)
        battles = Path(tmp) / "battles.jsonl"
        _battle_file(url, battles)
        env = {**os.environ, "WORKBENCH_DB_URL": url, "WORKBENCH_HOME": tmp}
        store = sorted(_cli([], env) for _ in range(ctx.repeats))[ctx.repeats // 2]
        by_settings = sorted(_cli(["--by", "both"], env) for _ in range(ctx.repeats))[ctx.repeats // 2]
        file = sorted(_cli(["--battles", str(battles)], env) for _ in range(ctx.repeats))[ctx.repeats // 2]
    label, anchor = f"{size['votes']:,} votes", "same votes, battle file"
    return [
        Measure.against("lb_cli", f"leaderboard --json from the store, {label}", store, "s", anchor, file, "< 3 s"),
        Measure.against("lb_cli", f"leaderboard --by both --json, {label}", by_settings, "s", anchor, file),
    ]
