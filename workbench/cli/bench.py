"""`python -m workbench bench`: measure speed as ratios against the anchors the issues name.

python -m workbench bench                       # every case
python -m workbench bench --case generation --repeats 5 --json
python -m workbench bench --case train_memory --steps 4     # fewer training steps for a quick look
"""

from __future__ import annotations

import argparse
import sys

from workbench.cli.common import add_model_flags, print_json, settings_from


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", help="run the benchmark (ratios against anchors)")
    p.add_argument("--case", action="append", default=None, help="run only this case; repeat for several")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measure, after one warm-up (default: 3)")
    p.add_argument(
        "--steps", type=int, default=None, help="training steps per side for the training cases (train_memory: 20)"
    )
    p.add_argument("--json", action="store_true", help="print the measures as JSON")
    add_model_flags(p)
    return p


def run(args: argparse.Namespace) -> int:
    from workbench import bench
    from workbench.errors import WorkbenchError

    if args.repeats < 1:
        raise WorkbenchError(f"--repeats must be at least 1, not {args.repeats}.")
    if args.steps is not None and args.steps < 1:
        raise WorkbenchError(f"--steps must be at least 1, not {args.steps}.")
    measures = bench.run(
        settings_from(args),
        args.case,
        args.repeats,
        progress=lambda name: print(f"running {name}…", file=sys.stderr),
        steps=args.steps,
    )
    if args.json:
        print_json(bench.as_rows(measures))
    else:
        print(bench.format_table(measures))
    return 0
