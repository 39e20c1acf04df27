"""`python -m workbench leaderboard`: Bradley-Terry ratings with 95% intervals and ranks, and the stopping rule.

    python -m workbench leaderboard                                  # from the store's pairwise votes
    python -m workbench leaderboard --battles clean_battle.json      # a FastChat clean-battle JSON or JSONL file
    python -m workbench leaderboard --bootstrap 1000 --seed 0 --json # one JSON object
    python -m workbench leaderboard --backend llamacpp               # only outputs llama.cpp made, on both sides
    python -m workbench leaderboard --by settings --json             # rank generation settings (or: both)
    python -m workbench leaderboard --raters all                     # count LLM judges' votes too (or: judges)

Prints each model's rating, interval, rank (interval-aware), online Elo and vote counts ("too few votes" beside a
model with under 10), the stopping rule (whether the 95% interval of each pair of neighbours' difference excludes
zero, and about how many votes would settle the ranking; `--half-width` or WORKBENCH_SETTLE_HALF_WIDTH also settles
neighbours measured to +-that many points), the backends behind the votes counted ("unknown" for outputs stored
before backends were recorded) and the position bias (how often the left output won). With `--json` the stopping
rule is the "stopping_rule" object: settled, votes, votes_needed (null: too close to call), half_width, summary, pairs.
`--backend` (repeatable) keeps the battles whose both outputs were made by one of the named backends, as the
Leaderboard page's filter does. `--by` ranks checkpoints (the default), generation settings, or each checkpoint
under each settings ("both"); votes between two equal contestants are left out. From the store the votes are
counted in the database (`Store.vote_tallies()`), so 100,000 votes rank in about the time of a battle file's first
read. `--raters` chooses whose votes count: people's only by default ("humans"), LLM judges' (raters named
"judge:<model>", see `workbench judge`), or "all". A bad battle file is reported with its line number (exit code 2).
"""

from __future__ import annotations

import argparse
import math

from workbench.cli.common import print_json
from workbench.config import Settings
from workbench.errors import WorkbenchError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("leaderboard", help="rank models from pairwise votes (store or FastChat battle file)")
    p.add_argument("--battles", metavar="FILE", help="FastChat clean-battle file (.json or .jsonl); default: the store")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap rounds (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    p.add_argument("--anchor", metavar="MODEL", help="put this model at 1000 (default: the mean is 1000)")
    p.add_argument("--rater", help="only this rater's votes (store) or judge's battles (file)")
    p.add_argument(
        "--raters",
        choices=["humans", "judges", "all"],
        default="humans",
        help="whose votes count: people's, LLM judges' (judge:<model>) or all (default: %(default)s)",
    )
    p.add_argument(
        "--backend",
        action="append",
        metavar="NAME",
        help="only battles whose both outputs this backend made (transformers, llamacpp, or unknown); repeatable",
    )
    p.add_argument(
        "--by",
        choices=["checkpoint", "settings", "both"],
        default="checkpoint",
        help="rank checkpoints, generation settings, or each checkpoint under each settings (default: %(default)s)",
    )
    p.add_argument(
        "--half-width",
        type=float,
        metavar="POINTS",
        help="stopping rule: neighbours both measured to +-POINTS count as settled (default: "
        "WORKBENCH_SETTLE_HALF_WIDTH; 0: only separated neighbours)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _battles(args: argparse.Namespace):
    """(battles or a tally, the votes in order for online Elo, where they came from), filtered and grouped."""
    from workbench.ratings import scoring
    from workbench.ratings.leaderboard import contestants, filter_ratings

    if args.battles:
        battles, source = scoring.load_battles(args.battles), args.battles
        frames = [battles]
    else:
        from workbench.store import Store

        settings = Settings.from_env()
        with Store.open(settings) as store:
            frames = [store.vote_tallies(), store.vote_sequence()]
        source = settings.db_url.split("@")[-1] if "@" in settings.db_url else settings.db_url
    if args.rater and "judge" not in frames[0].columns:
        raise WorkbenchError("These battles have no judge column, so --rater cannot filter them.")
    if args.backend and not {"backend_a", "backend_b"} <= set(frames[0].columns):
        raise WorkbenchError("These battles have no backend_a/backend_b columns, so --backend cannot filter them.")
    chosen = {"raters": [args.rater] if args.rater else None, "backends": args.backend}
    kept = [filter_ratings(f, rater_kind=args.raters, **chosen) for f in frames]
    args.left_out = 0  # votes of the other rater kind, so that the output can say what it did not count
    if args.raters != "all":
        everyone = filter_ratings(frames[0], rater_kind="all", **chosen)
        args.left_out = int(scoring.weights(everyone).sum() - scoring.weights(kept[0]).sum())
    frames = [contestants(f, args.by) for f in kept]
    return frames[0], frames[-1], source


def _clean(value):
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 2)
    return value.item() if hasattr(value, "item") else value


def run(args: argparse.Namespace) -> int:
    from workbench.ratings import scoring
    from workbench.ratings.leaderboard import backends_of
    from workbench.ratings.settle import stopping_rule

    if args.bootstrap < 0:
        raise WorkbenchError(f"--bootstrap must be 0 or more, not {args.bootstrap}.")
    if args.half_width is not None and not 0 <= args.half_width <= 1000:
        raise WorkbenchError(f"--half-width must be between 0 and 1000 rating points, not {args.half_width:g}.")
    half_width = args.half_width if args.half_width is not None else Settings.from_env().settle_half_width
    battles, ordered, source = _battles(args)
    elo = scoring.online_elo(ordered) if len(ordered) else None
    board = scoring.leaderboard(battles, bootstrap=args.bootstrap, seed=args.seed, anchor=args.anchor, elo=elo)
    n_battles = int(scoring.weights(battles).sum())
    bias = scoring.position_bias(battles) if n_battles else None
    covered = backends_of(battles)
    rule = stopping_rule(battles, half_width=half_width)
    if args.json:
        models = [{k: _clean(v) for k, v in row.items()} for row in board.to_dict("records")]
        bias_out = {k: _clean(v) for k, v in bias.items()} if bias else None
        meta = {"source": source, "by": args.by, "raters": args.raters, "battles": n_battles}
        meta.update(not_counted=args.left_out, bootstrap=args.bootstrap, seed=args.seed)
        stop = _clean_tree(rule.as_dict())
        print_json({**meta, "backends": covered, "models": models, "position_bias": bias_out, "stopping_rule": stop})
        return 0
    if board.empty:
        print(f"No pairwise votes in {source} {'match the filters' if args.rater or args.backend else 'yet'}.")
        if args.left_out:
            other = "LLM judges" if args.raters == "humans" else "people"
            print(f"{args.left_out} votes by {other} are not counted: --raters all counts them.")
        return 0
    _print_table(board, n_battles, args.bootstrap, covered)
    if args.left_out:
        print(f"({args.left_out} votes by {'LLM judges' if args.raters == 'humans' else 'people'} not counted.)")
    if bias and bias["decisive"]:
        print(
            f"\nLeft output won {bias['left_wins']} of {bias['decisive']} decisive votes ({bias['rate']:.0%},"
            f" 95% interval {bias['lower']:.0%} to {bias['upper']:.0%}); {bias['ties']} ties or both bad."
        )
    _print_rule(rule)
    return 0


def _clean_tree(value):
    if isinstance(value, dict):
        return {k: _clean_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_tree(v) for v in value]
    return _clean(value)


def _print_rule(rule) -> None:
    """The stopping rule: its sentence, then each neighbour pair."""
    print(f"\nStopping rule: {rule.summary()}")
    table = rule.table()
    if table.empty:
        return
    width = max(10, *(len(n) for n in table["neighbours"]))
    print(f"  {'neighbours':<{width}}  {'gap (95%)':>15}  {'separated':>9}  votes needed")
    for r in table.itertuples(index=False):
        print(f"  {r[0]:<{width}}  {r[1]:>15}  {r[2]:>9}  {r[3]}")


def _print_table(board, n_battles: int, bootstrap: int, backends: list[str]) -> None:
    width = max(5, *(len(m) for m in board["model"]))
    interval = "95% interval"
    print(f"{n_battles} battles, {bootstrap} bootstrap rounds; backends: {', '.join(backends)}.\n")
    head = f"{'rank':>4}  {'model':<{width}}  {'rating':>7}  {interval:^17}  {'votes':>5}  {'W-L-T':>11}  {'elo':>6}"
    print(head)
    for r in board.itertuples():
        record = f"{r.wins}-{r.losses}-{r.ties}"
        span = f"{r.lower:7.1f} - {r.upper:<7.1f}"
        elo = f"{r.elo:6.1f}" if not math.isnan(r.elo) else f"{'-':>6}"
        line = f"{r.rank:>4}  {r.model:<{width}}  {r.rating:7.1f}  {span:^17}  {r.battles:>5}  {record:>11}  {elo}"
        print(f"{line}  {r.note}".rstrip())
