"""`python -m workbench token-shift`: what a checkpoint changed, token by token, against another of the same base model.

    python -m workbench token-shift --after my-run --suite identity_heldout --limit 8          # against the base
    python -m workbench token-shift --before my-run/checkpoint-20 --after my-run/checkpoint-40 --suite \
        identity_heldout --replies generated --top 30 --min-count 3 --json
    python -m workbench token-shift --after my-run --prompt "Who are you?" --reply "I am Vicuna."   # one reply

With --suite, each example's first reference (or, with --replies generated, the --after checkpoint's greedy reply at
the suite's settings) is read under both checkpoints, and the tokens (by text) whose log-probability moved most on
average are listed with their count and mean probabilities (`workbench.studio.tokenshift`). With --prompt, one reply
(--reply, else the --after checkpoint's greedy one) is listed token by token with both probabilities. `--json`
prints one object: before, after, model, the source, tokens read, the mean log-probability under each, and
moved_most (suite) or tokens (one reply). Exit code 2 with one sentence for two checkpoints of different base
models, the same checkpoint twice, or an unknown one, before any model loads.
"""

from __future__ import annotations

import argparse
from typing import Any

from workbench.cli.common import add_model_flags, print_json, settings_from


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from workbench.studio.tokenshift import MAX_PROMPTS, REPLIES

    p = sub.add_parser("token-shift", help="the tokens whose probability a checkpoint moved most against another")
    p.add_argument("--before", default="base", help='the checkpoint compared against (default: "base")')
    p.add_argument("--after", required=True, help="the checkpoint whose changes are read: an adapter, run/checkpoint-N")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--suite", help="a generation suite of evals/ (its prompts)")
    source.add_argument("--prompt", help="one user message")
    p.add_argument("--reply", help="with --prompt: the reply to read (default: --after's greedy reply)")
    p.add_argument(
        "--replies",
        choices=REPLIES,
        default="references",
        help="with --suite: which replies to read (default: %(default)s)",
    )
    p.add_argument(
        "--limit", type=int, default=8, help=f"with --suite: prompts, 1 to {MAX_PROMPTS} (default: %(default)s)"
    )
    p.add_argument("--top", type=int, default=20, help="tokens to list (default: %(default)s)")
    p.add_argument(
        "--min-count", type=int, default=2, help="list a token seen at least this often (default: %(default)s)"
    )
    p.add_argument(
        "--max-new-tokens", type=int, default=128, help="with --prompt and no --reply (default: %(default)s)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_model_flags(p)
    return p


def _means(readings) -> dict[str, Any]:
    rows = [r for reading in readings for r in reading]
    n = max(len(rows), 1)
    return {
        "tokens_read": len(rows),
        "mean_logprob_before": sum(r["logprob_before"] for r in rows) / n,
        "mean_logprob_after": sum(r["logprob_after"] for r in rows) / n,
    }


def _one_reply(router, args: argparse.Namespace, out: dict[str, Any]) -> dict[str, Any]:
    from workbench.generation.settings import GenerationSettings, conversation
    from workbench.generation.tokenshift import token_shift

    messages = conversation(None, args.prompt)
    reply = args.reply
    if reply is None:
        greedy = GenerationSettings(temperature=0, seed=0, max_new_tokens=args.max_new_tokens)
        reply, _ = router.generate(messages, greedy, args.after)
    rows = token_shift(router, messages, reply, args.before, args.after)
    return {**out, "prompt": args.prompt, "reply": reply, **_means([rows]), "tokens": rows}


def _suite(router, args: argparse.Namespace, out: dict[str, Any]) -> dict[str, Any]:
    from workbench.studio.tokenshift import moved_most, suite_shift

    moved_most([], top=args.top, min_count=args.min_count)  # checks --top and --min-count before the model loads
    readings = suite_shift(router, args.suite, args.before, args.after, limit=args.limit, replies=args.replies)
    table = moved_most(readings, top=args.top, min_count=args.min_count)
    extra = {"suite": args.suite, "replies": args.replies, "prompts": len(readings), **_means(readings)}
    return {**out, **extra, "moved_most": table.to_dict("records")}


def run(args: argparse.Namespace) -> int:
    from workbench.errors import WorkbenchError
    from workbench.generation.router import Router
    from workbench.generation.tokenshift import check_pair
    from workbench.views.tokenview import shown_token

    if args.reply is not None and args.prompt is None:
        raise WorkbenchError("--reply goes with --prompt: it is the reply to that prompt.")
    settings = settings_from(args)
    router = Router(settings)
    before, after = check_pair(router, args.before, args.after)
    for name in (before, after):  # an unknown adapter fails before the slow model load
        _check_adapter(settings, name)
    out = {"before": before, "after": after, "model": router.base_name(after)}
    out = _one_reply(router, args, out) if args.prompt is not None else _suite(router, args, out)
    if args.json:
        print_json(out)
        return 0
    print(
        f"{after} against {before} on {out['model']}: {out['tokens_read']} tokens read, mean log-prob "
        f"{out['mean_logprob_before']:.3f} -> {out['mean_logprob_after']:.3f}"
    )
    if "tokens" in out:
        for r in out["tokens"]:
            print(f"{shown_token(r['token']):>20}  {r['before']:7.2%} -> {r['after']:7.2%}  {r['shift']:+.2f}")
        return 0
    print(f"tokens that moved most over {out['prompts']} prompts of {args.suite} ({args.replies}):")
    for r in out["moved_most"]:
        print(
            f"{shown_token(r['token']):>20}  x{r['ratio']:<8.3g} mean shift {r['mean_shift']:+.2f} nats over "
            f"{r['count']:>3}  ({r['before']:.1%} -> {r['after']:.1%})"
        )
    return 0


def _check_adapter(settings, name: str) -> None:
    """Refuse an adapter of the main model that does not exist or is unusable (remote ones are the Router's)."""
    from workbench.registry import BASE_NAME, find_adapter, resolve_base

    if name not in ("", BASE_NAME) and not name.startswith("remote:"):
        find_adapter(settings, name, resolve_base(settings))
