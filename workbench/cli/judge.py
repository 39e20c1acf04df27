"""`python -m workbench judge`: an LLM judge on the store's pairs, and how often it agrees with the people.

    python -m workbench judge --judge base                          # the embedded model judges every voted pair
    python -m workbench judge --judge remote:gpt4o-mini --json      # a remote model; one JSON object
    python -m workbench judge --judge my-run --prompt-set vicuna-bench --limit 50
    python -m workbench judge --judge base --prompt-file my_judge.json --max-new-tokens 512
    python -m workbench judge --judge base --agreement-only --json  # the numbers again, judging nothing

Each pair is judged in both orders (a verdict that flips with the order is a tie) and stored as one vote by
the rater "judge:<model>" (`--as NAME` names it "judge:NAME"); pairs this judge already voted on are skipped, so
running it again carries on. Pairs on prompts visitors typed (the Arena's battles, chats, prompts waiting for approval)
are judged only with WORKBENCH_JUDGE_VISITOR_PROMPTS=1. Replies without a verdict are listed and never stored. Then
it prints the judge's agreement with the people, measured as in the MT-bench paper (see docs/judge.md): with ties,
without ties, Cohen's kappa and position consistency, beside the people's agreement with each other on the same pairs.
"""

from __future__ import annotations

import argparse
import math
import sys

from workbench.cli.common import add_model_flags, print_json, settings_from
from workbench.errors import WorkbenchError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from workbench.studio.judge import DEFAULT_MAX_NEW_TOKENS

    p = sub.add_parser("judge", help="an LLM judge votes on the store's pairs; its agreement with the people")
    p.add_argument("--judge", metavar="MODEL", help="the judge: base, an adapter, or remote:NAME (see `models`)")
    p.add_argument("--as", dest="name", metavar="NAME", help="vote as judge:NAME (default: the model's store name)")
    p.add_argument(
        "--prompt-set", metavar="NAME", help="judge this prompt set's pairs (default: pairs people voted on)"
    )
    p.add_argument("--prompt-file", metavar="FILE", help="judge prompt: a FastChat-style .json, or a text template")
    p.add_argument("--limit", type=int, metavar="N", help="judge at most N pairs in this run")
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=DEFAULT_MAX_NEW_TOKENS,
        metavar="N",
        help="longest judge reply (default: %(default)s; an explain-first prompt needs more)",
    )
    p.add_argument("--agreement-only", action="store_true", help="print the agreement without judging")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_model_flags(p)
    return p


class _Bar:
    """A tqdm bar on stderr over the pairs, made when the first pair finishes (nothing to draw before)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.bar = quiet, None

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="judging", unit="pair", file=sys.stderr, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _judge_of(args: argparse.Namespace, settings, store) -> str:
    """The judge's rater name: from --as or --judge, or the store's one judge when neither is given."""
    from workbench.generation.router import store_name
    from workbench.store import is_judge, judge_rater

    if args.name or args.judge:
        return judge_rater(args.name or store_name(settings, args.judge))
    judges = sorted({r for r in store.raters() if is_judge(r)})
    if len(judges) != 1:
        named = f"; the store has {', '.join(judges)}" if judges else "; the store has no judge's votes yet"
        raise WorkbenchError(f"Name the judge with --judge MODEL or --as NAME{named}.")
    return judges[0]


def _run_judge(args: argparse.Namespace, settings, store):
    from workbench.generation.router import Router, choices
    from workbench.studio.judge import DEFAULT_PROMPT, judge, read_prompt_file

    if not args.judge:
        raise WorkbenchError("Name the judge with --judge MODEL: base, an adapter, or remote:NAME.")
    known = choices(settings)
    if args.judge not in known:
        raise WorkbenchError(f"There is no checkpoint {args.judge!r} to judge with; choose one of {', '.join(known)}.")
    prompt = read_prompt_file(args.prompt_file) if args.prompt_file else DEFAULT_PROMPT
    bar = _Bar(args.quiet)
    try:
        return judge(
            Router(settings),
            store,
            args.judge,
            prompt=prompt,
            prompt_set=args.prompt_set,
            limit=args.limit,
            max_new_tokens=args.max_new_tokens,
            name=args.name,
            progress=bar,
            visitor_prompts=settings.judge_visitor_prompts,
        )
    finally:
        bar.close()


def _clean(summary: dict) -> dict:
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in summary.items()}


def run(args: argparse.Namespace) -> int:
    from workbench.ratings.agreement import judge_agreement
    from workbench.store import Store

    if args.agreement_only and (args.prompt_set or args.prompt_file or args.limit):
        raise WorkbenchError("--agreement-only judges nothing: leave out --prompt-set, --prompt-file and --limit.")
    settings = settings_from(args)
    with Store.open(settings) as store:
        run_ = None if args.agreement_only else _run_judge(args, settings, store)
        rater = run_.judge if run_ is not None else _judge_of(args, settings, store)
        summary = _clean(judge_agreement(store.pair_verdicts(), rater))
    if args.json:
        print_json({**summary, "run": run_.to_dict() if run_ is not None else None})
        return 0
    if run_ is not None:
        _print_run(run_.to_dict())
    _print_agreement(summary)
    return 0


def _print_run(r: dict) -> None:
    for bad in r["unparsed"]:
        print(f"no verdict (pair {bad['generation_a']}-{bad['generation_b']}, order {bad['order']}): {bad['reply']!r}")
    for bad in r["failed"]:
        print(f"failed (pair {bad['generation_a']}-{bad['generation_b']}, order {bad['order']}): {bad['error']}")
    tokens, billed = r["tokens"], " (as the server counted them)" if r["remote"] else ""
    print(
        f"{r['judge']} judged {r['judged']} pairs in {r['seconds']:.0f} s ({r['skipped']} of {r['candidates']} were "
        f"judged before; {len(r['unparsed'])} replies without a verdict, {len(r['failed'])} failed). Tokens: "
        f"{tokens['prompt']} prompt + {tokens['completion']} completion{billed}."
    )


def _share(value, n: int) -> str:
    return "n/a" if value is None else f"{value:.1%} of {n}"


def _print_agreement(s: dict) -> None:
    kappa = "n/a" if s["kappa"] is None else f"{s['kappa']:.3f}"
    hh_kappa = "n/a" if s["human_human_kappa"] is None else f"{s['human_human_kappa']:.3f}"
    consistency = "n/a" if s["position_consistency"] is None else f"{s['position_consistency']:.1%}"
    print(
        f"\n{s['judge']}: {s['verdicts']} verdicts; position consistency {consistency} (same verdict in both orders)."
    )
    if not s["pairs"]:
        print("No pair has both a verdict of this judge and a person's vote yet.")
        return
    print(f"Against the people on {s['pairs']} shared pairs ({s['comparisons']} comparisons):")
    print(f"  agreement with ties    {_share(s['agreement_with_ties'], s['comparisons'])}")
    print(f"  agreement without ties {_share(s['agreement_without_ties'], s['comparisons_without_ties'])}")
    print(f"  Cohen's kappa          {kappa}")
    hh_pairs, hh_n = s["human_human_pairs"], s["human_human_comparisons"]
    print(f"People with each other on {hh_pairs} of those pairs ({hh_n} comparisons):")
    print(f"  agreement with ties    {_share(s['human_human_with_ties'], s['human_human_comparisons'])}")
    hh = s["human_human_comparisons_without_ties"]
    print(f"  agreement without ties {_share(s['human_human_without_ties'], hh)}")
    print(f"  Cohen's kappa          {hh_kappa}")
