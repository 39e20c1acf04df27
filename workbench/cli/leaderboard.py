"""`python -m workbench leaderboard`: Bradley-Terry ratings with 95% intervals and ranks, and the stopping rule.

    python -m workbench leaderboard                                  # from the store's pairwise votes
    python -m workbench leaderboard --battles clean_battle.json      # a FastChat clean-battle JSON or JSONL file
    python -m workbench leaderboard --bootstrap 1000 --seed 0 --json # one JSON object
    python -m workbench leaderboard --backend llamacpp               # only outputs llama.cpp made, on both sides
    python -m workbench leaderboard --by settings --json             # rank generation settings (or: both)
    python -m workbench leaderboard --raters all                     # count LLM judges' votes too (or: judges)
    python -m workbench leaderboard --per-rater                      # votes per rater, and raters flagged as outliers
    python -m workbench leaderboard --drop anon-1f2e3d4c5b6a7988 [--reason TEXT] [--token T]   # or --undrop NAME

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
From the store, one visitor's votes on one pair of contestants count for at most `--cap` votes (WORKBENCH_RATER_CAP)
and raters the owner dropped are left out (`--drop`/`--undrop`, admin actions: their votes stay in the store);
`--per-rater` lists each rater's votes, what they count for, and whether their votes disagree with everyone else's
far beyond chance (workbench/ratings/raters.py).
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
    p.add_argument(
        "--cap",
        type=int,
        metavar="N",
        help="the most votes one visitor counts for on one pair of contestants (default: WORKBENCH_RATER_CAP; 0: "
        "no cap)",
    )
    p.add_argument("--per-rater", action="store_true", help="votes per rater and the outlier test, instead")
    owner = p.add_mutually_exclusive_group()
    owner.add_argument("--drop", metavar="RATER", help="leave this rater's votes out (admin; they stay in the store)")
    owner.add_argument("--undrop", metavar="RATER", help="count a dropped rater's votes again (admin)")
    p.add_argument("--reason", help="why a rater is dropped (with --drop)")
    p.add_argument("--token", help="the admin token, when WORKBENCH_ADMIN_TOKEN is set")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _battles(args: argparse.Namespace):
    """(battles or a tally, the votes in order for online Elo, where they came from), filtered and grouped."""
    from workbench.ratings import scoring
    from workbench.ratings.leaderboard import contestants, filter_ratings
    from workbench.ratings.raters import capped

    if args.battles:
        battles, source = scoring.load_battles(args.battles), args.battles
        frames = [battles]
    else:
        from workbench.store import Store

        settings = Settings.from_env()
        with Store.open(settings) as store:
            frames = [store.vote_tallies(), store.vote_sequence()]
            args.dropped = frozenset(store.dropped_raters())
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
    args.everyone = contestants(kept[0], args.by)  # every rater's, dropped ones too: the per-rater table
    if args.dropped:
        kept = [f[~f["judge"].isin(list(args.dropped))].reset_index(drop=True) if len(f) else f for f in kept]
    frames = [contestants(f, args.by) for f in kept]
    return capped(frames[0], args.cap), frames[-1], source


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
    settings = Settings.from_env()
    half_width = args.half_width if args.half_width is not None else settings.settle_half_width
    if args.cap is not None and not 0 <= args.cap <= 100_000:
        raise WorkbenchError(f"--cap must be between 0 and 100000 votes, not {args.cap}.")
    args.cap = settings.rater_cap if args.cap is None else args.cap
    args.dropped = frozenset()
    if args.drop or args.undrop:
        return _drop(args, settings)
    battles, ordered, source = _battles(args)
    if args.per_rater:
        return _per_rater(args)
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


def _drop(args: argparse.Namespace, settings: Settings) -> int:
    """--drop / --undrop: an admin action on the store."""
    from workbench.store import Store

    with Store.open(settings) as store:
        if args.drop:
            done = store.drop_rater(args.drop, reason=args.reason, token=args.token)
            print(
                f"{args.drop} {'is dropped' if done else 'was dropped already'}: their votes stay in the store and "
                "are left out of the leaderboard and the preference pairs (--undrop counts them again)."
            )
        else:
            done = store.undrop_rater(args.undrop, token=args.token)
            print(f"{args.undrop} {'counts again' if done else 'was not dropped'}.")
    return 0


def _per_rater(args: argparse.Namespace) -> int:
    """--per-rater: votes per rater, what they count for, and the outlier test."""
    from workbench.ratings.raters import ALPHA, rater_table

    table = rater_table(args.everyone, dropped=args.dropped, cap=args.cap)
    if args.json:
        print_json(
            {
                "cap": args.cap,
                "alpha": ALPHA,
                "raters": [{k: _clean(v) for k, v in row.items()} for row in table.to_dict("records")],
            }
        )
        return 0
    if table.empty:
        print("No pairwise votes yet.")
        return 0
    width = max(5, *(len(r) for r in table["rater"]))
    print(
        f"{'rater':<{width}}  {'votes':>5}  {'pairs':>5}  {'counted':>7}  {'share':>6}  {'against':>11}  "
        f"{'p-value':>8}  status"
    )
    for r in table.itertuples(index=False):
        against = f"{r.against:.0f} ({r.expected:.1f})" if r.tested else "-"
        p_value = f"{r.p_value:.2g}" if r.p_value == r.p_value else "-"
        status = ", ".join(s for s, on in (("flagged", r.flagged), ("dropped", r.dropped)) if on)
        print(
            f"{r.rater:<{width}}  {r.votes:>5.0f}  {r.pairs:>5}  {r.counted:>7.1f}  {r.share:>6.1%}  {against:>11}  "
            f"{p_value:>8}  {status}".rstrip()
        )
    print(
        f"\ncounted: votes in the fit (one visitor counts for at most {args.cap} on a pair; a dropped rater 0). "
        "against: decisive votes for the side everyone else's fit favours less (expected by chance). Flagged: "
        f"far beyond chance (Holm, family-wise {ALPHA:.0%})."
    )
    return 0
