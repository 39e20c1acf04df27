"""`python -m workbench eval`: run evaluation suites against checkpoints, with a progress bar, and store the results.

    python -m workbench eval --list                                        # the suites in evals/
    python -m workbench eval --suite shakespeare --suite identity_heldout --checkpoint base \\
        --checkpoint my-run/checkpoint-200 --json
    python -m workbench eval --suite identity_heldout_ppl --all-checkpoints my-run   # base + every checkpoint
    python -m workbench eval --suite self_instruct_user --checkpoint base --checkpoint remote:gpt4o-mini
    python -m workbench eval --suite self_instruct_user --limit 0          # all examples, not the suite's limit

Results go to the store (`WORKBENCH_DB_URL`, SQLite under var/ by default) unless --no-store: one row per
metric with its signature, token counts, settings and hashes, plus every example's output and score.
"""

from __future__ import annotations

import argparse
import sys

from workbench.cli.common import add_model_flags, print_json, settings_from
from workbench.errors import WorkbenchError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("eval", help="run evaluation suites on checkpoints and store the results")
    p.add_argument("--suite", action="append", default=[], help="suite name (or spec file); repeat for several")
    p.add_argument("--checkpoint", action="append", default=[], help='"base", an adapter name, or remote:NAME; repeat')
    p.add_argument(
        "--all-checkpoints", action="append", default=[], metavar="RUN", help="base and every checkpoint of RUN"
    )
    p.add_argument("--limit", type=int, default=None, help="examples per suite (default: the suite's; 0: all)")
    p.add_argument("--no-store", action="store_true", help="print the results without storing them")
    p.add_argument("--list", action="store_true", help="list the suites and exit")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    add_model_flags(p)
    return p


class _Bars:
    """tqdm bars on stderr, one per suite and checkpoint."""

    def __init__(self) -> None:
        self.bar = None

    def start(self, label: str, total: int) -> None:
        from tqdm import tqdm

        self.close()
        self.bar = tqdm(total=total, desc=label, file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _list(json_out: bool) -> int:
    from workbench.evaluation.suites import list_suites

    suites = list_suites()
    if json_out:
        print_json(
            [
                {"name": s.name, "kind": s.kind, "data": str(s.data), "limit": s.limit, "metrics": list(s.metrics)}
                for s in suites
            ]
        )
        return 0
    for s in suites:
        extra = f" metrics={','.join(s.metrics)}" if s.metrics else ""
        print(f"{s.name:<24} {s.kind:<20} limit={s.limit or 'all'}{extra}\n    {s.description}")
    return 0


def _checkpoints(settings, args: argparse.Namespace) -> list[str]:
    from workbench.evaluation.runner import run_checkpoints
    from workbench.generation.router import REMOTE, choices
    from workbench.registry import BASE_NAME, find_adapter, resolve_base

    base = resolve_base(settings)
    names = list(args.checkpoint)
    for run in args.all_checkpoints:
        names += run_checkpoints(settings, run, base)
    names = list(dict.fromkeys(names or [BASE_NAME]))
    known = choices(settings)
    for name in names:
        if name.startswith(REMOTE) and name not in known:
            raise WorkbenchError(
                f"There is no usable remote checkpoint {name!r}; `python -m workbench models` lists them."
            )
        if name != BASE_NAME and not name.startswith(REMOTE):
            find_adapter(settings, name, base)  # an unknown or broken adapter fails before the model loads
    return names


def run(args: argparse.Namespace) -> int:
    if args.list:
        return _list(args.json)
    from workbench.evaluation.suites import find_suite

    if not args.suite:
        raise WorkbenchError("Name a suite with --suite (`python -m workbench eval --list` lists them).")
    if args.limit is not None and args.limit < 0:
        raise WorkbenchError(f"--limit must be 0 (all examples) or more, not {args.limit}.")
    suites = [find_suite(name) for name in dict.fromkeys(args.suite)]
    settings = settings_from(args)
    checkpoints = _checkpoints(settings, args)

    from workbench.evaluation.runner import run_suites
    from workbench.generation.router import Router

    engine = Router(settings)  # the configured model, and the remote models named "remote:NAME"
    bars = _Bars()
    try:
        results = run_suites(engine, suites, checkpoints, limit=args.limit, progress=bars)
    finally:
        bars.close()
    if not args.no_store:
        from workbench.evaluation.results import save_results
        from workbench.store import Store

        with Store.open(settings) as store:
            save_results(store, results)
    if args.json:
        print_json({"stored": not args.no_store, "results": [r.to_dict() for r in results]})
        return 0
    for r in results:
        step = "" if r.step is None else f" step {r.step}"
        print(f"{r.suite:<22} {r.checkpoint}{step:<10} {r.metric:<20} {r.value:10.4f}  {r.signature or ''}")
    return 0
