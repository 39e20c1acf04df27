"""`workbench train` (also `python -m workbench train`): LoRA fine-tuning from a dataset file, with progress and a
JSON summary.

    workbench train --data data/fastchat_identity/train.jsonl --name identity --max-steps 40
    workbench train --name identity --resume            # after a crash or Cancel: same settings
    workbench train --data my.jsonl --name x --validate-only   # the validation report and memory estimate
    workbench train --method dpo --data pairs.jsonl --name x     # prompt/chosen/rejected pairs
    workbench train --method dpo --from-votes --name x --init-adapter identity --report-to tensorboard
    workbench train --method dpo --from-votes --vote-source edit --name x   # corrections: edited over original
    workbench train --from-corrections --name x                  # SFT on the chat's corrections (edited replies)
    workbench train --method kto --data likes.jsonl --name x     # prompt/completion/label replies
    workbench train --method kto --from-likes --like-since 2026-12-01 --name x   # the chat's likes and dislikes
    accelerate launch --num_processes 2 -m workbench train --data ... --name ...   # DDP, one process per GPU

The validation report prints first (every dropped line with its reason); `--json` prints the run summary
as one JSON object on stdout at the end (the report then goes to stderr). SIGTERM or Ctrl-C stops after
the current step, keeping every complete checkpoint; `--resume` continues from the last one.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from workbench.cli.common import add_model_flags, print_json, settings_from
from workbench.errors import WorkbenchError
from workbench.training import hparams
from workbench.training.config import JobConfig, RunPaths

HYPERPARAMETERS = hparams.declared(JobConfig)  # each one a flag, named for its field (`hparams.flag`)
_TYPES = {"int": int, "float": float, "text": str, "list": str}


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="fine-tune the base model with LoRA on a dataset file")
    p.add_argument(
        "--data",
        help="training file: .jsonl, .json or .csv (SFT: pairs, chat or Alpaca; DPO: prompt/chosen/rejected; "
        "KTO: prompt/completion/label)",
    )
    p.add_argument("--val", help="validation file (default: hold out --val-fraction of --data)")
    p.add_argument("--name", required=True, help="run name: the folder under the adapters folder")
    p.add_argument("--resume", action="store_true", help="continue the run from its last complete checkpoint")
    p.add_argument(
        "--validate-only", action="store_true", help="print the validation report and the memory estimate, and exit"
    )
    p.add_argument("--eval-suite", action="append", default=None, help="evaluation suite to run at every save")
    p.add_argument("--no-store", action="store_true", help="do not write training logs to the store")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    votes = p.add_argument_group("DPO from the store's votes (instead of --data)")
    votes.add_argument("--from-votes", action="store_true", help="train on the store's decisive votes")
    votes.add_argument(
        "--vote-checkpoint", action="append", metavar="CHECKPOINT", help="only votes between these checkpoints (repeat)"
    )
    votes.add_argument("--vote-rater", action="append", metavar="RATER", help="only votes by these raters (repeat)")
    votes.add_argument(
        "--vote-raters",
        choices=["humans", "judges", "all"],
        default="humans",
        help="whose votes train: people's, LLM judges' (judge:<model>) or all (default: %(default)s)",
    )
    votes.add_argument("--vote-same-settings", action="store_true", help="only outputs made with the same settings")
    votes.add_argument(
        "--vote-unreviewed",
        action="store_true",
        help="also pairs on prompts visitors typed (not approved) that fewer than two raters agree on; by default "
        "only reviewed pairs train",
    )
    votes.add_argument(
        "--vote-min-agreement",
        type=float,
        default=0.5,
        metavar="SHARE",
        help="share of a pair's votes its winner needs (0.5-1)",
    )
    votes.add_argument(
        "--vote-source",
        choices=("arena", "chat", "edit", "all"),
        default="arena",
        help="the Arena's blind votes, the chat's regenerate pairs (a reply regenerated and kept), its corrections "
        "(a reply a person edited, preferred over the original), or all",
    )
    votes.add_argument(
        "--from-corrections",
        action="store_true",
        help="SFT on the chat's corrections (the conversation answered with the edited reply), under the "
        "--vote-checkpoint, --vote-rater and --vote-raters filters",
    )
    _add_like_flags(p)
    _add_hyperparameters(p)
    add_model_flags(p)
    return p


def _add_like_flags(p: argparse.ArgumentParser) -> None:
    likes = p.add_argument_group("KTO from the store's likes and dislikes (instead of --data)")
    likes.add_argument("--from-likes", action="store_true", help="train on the chat's current likes and dislikes")
    likes.add_argument(
        "--like-checkpoint", action="append", metavar="CHECKPOINT", help="only replies of these checkpoints (repeat)"
    )
    likes.add_argument("--like-rater", action="append", metavar="RATER", help="only reactions by these raters (repeat)")
    likes.add_argument(
        "--like-raters",
        choices=["humans", "judges", "all"],
        default="humans",
        help="whose reactions train: people's, LLM judges' (judge:<model>) or all (default: %(default)s)",
    )
    likes.add_argument(
        "--like-origin", choices=("chat", "all"), default="chat", help="the chat's replies, or any stored reply"
    )
    likes.add_argument("--like-since", metavar="YYYY-MM-DD", help="only reactions given on or after this day (UTC)")
    likes.add_argument("--like-until", metavar="YYYY-MM-DD", help="only reactions given on or before this day (UTC)")


def _add_hyperparameters(p: argparse.ArgumentParser) -> None:
    """One flag per declared hyperparameter, grouped by section. A flag left out is None (JobConfig's default
    applies, or with --resume the run's saved value), so that a value typed on purpose can be told apart."""
    groups = {section: p.add_argument_group(f"hyperparameters: {section}") for section in hparams.SECTIONS}
    for f, spec in HYPERPARAMETERS:
        group = groups[spec.section]
        if spec.kind == "bool":
            # --x / --no-x: a default may be on (gradient checkpointing), so turning it off needs a flag too
            group.add_argument(
                hparams.flag(f.name), action=argparse.BooleanOptionalAction, default=None, help=spec.help
            )
            continue
        notes = [spec.bounds_text()] if spec.bounds_text() and not spec.choices else []
        if f.default is not None:
            notes.append(f"default: {','.join(f.default) if isinstance(f.default, tuple) else f.default}")
        group.add_argument(  # choices are checked by JobConfig (one sentence), not argparse; the metavar shows them
            hparams.flag(f.name),
            type=_TYPES[spec.kind],
            default=None,
            metavar="|".join(spec.choices) if spec.choices else spec.kind.upper(),
            help=f"{spec.help} ({'; '.join(notes)})" if notes else spec.help,
        )


def _given(args: argparse.Namespace) -> dict[str, object]:
    values: dict[str, object] = {}
    for f, spec in HYPERPARAMETERS:
        value = getattr(args, f.name)
        if value is not None:
            values[f.name] = hparams.parse_list(value) if spec.kind == "list" else value
    if args.eval_suite:
        values["eval_suites"] = tuple(args.eval_suite)
    return values


def job_config(args: argparse.Namespace, settings) -> JobConfig:
    """The job: from the flags, or (with --resume) the run's saved settings."""
    from workbench.training.checkpoints import load_job

    given = _given(args)
    if args.resume:
        extra = [hparams.flag(f.name) for f, _ in HYPERPARAMETERS if f.name in given] + [
            f
            for f in ("--data", "--val", "--from-votes", "--from-corrections", "--from-likes")
            if getattr(args, f[2:].replace("-", "_"))
        ]
        if extra:
            raise WorkbenchError(
                f"--resume continues run {args.name!r} with its saved settings; leave out {', '.join(extra)}."
            )
        return JobConfig.from_dict(load_job(RunPaths.of(settings, args.name))["config"])
    votes = likes = None
    if args.from_votes and args.from_likes:
        raise WorkbenchError("Train on either the votes (--from-votes) or the likes (--from-likes), not both.")
    if args.from_corrections:
        if args.data or args.from_votes or args.from_likes or given.get("method", "sft") != "sft":
            raise WorkbenchError(
                "--from-corrections trains SFT on the store's corrections: leave out --data, --from-votes and --method."
            )
        args.data = str(_correction_examples(args, settings))
    if args.from_likes:
        if args.data or given.get("method", "kto") != "kto":
            raise WorkbenchError("--from-likes trains KTO on the store's likes: leave out --data and other methods.")
        given["method"] = "kto"
        likes = _like_records(args, settings)
        args.data = str(likes.pop("path"))
    elif args.from_votes:
        if args.data or given.get("method", "dpo") != "dpo":
            raise WorkbenchError("--from-votes trains DPO on the store's votes: leave out --data and --method sft.")
        given["method"] = "dpo"
        votes = _vote_pairs(args, settings)
        args.data = str(votes.pop("path"))
    elif not args.data:
        raise WorkbenchError("Name a training file with --data (or continue a run with --resume).")
    return JobConfig(
        run=args.name, data=args.data, val_data=args.val, base_model=args.model, votes=votes, likes=likes, **given
    )


def _vote_pairs(args: argparse.Namespace, settings) -> dict[str, object]:
    """Write the run's pairs from the store's votes; returns the filters, counts and the file's path."""
    from workbench.store import Store
    from workbench.training.checkpoints import check_run_folder
    from workbench.training.votes import describe, pairs_path, write_vote_pairs

    filters = _filters(args)
    check_run_folder(RunPaths.of(settings, args.name), resume=False)  # never overwrite a run's pairs
    path = pairs_path(settings, args.name)
    with Store.open(settings) as store:
        counts = write_vote_pairs(store, settings, filters, path)
    print(describe(counts), file=sys.stderr)
    return {"filters": filters.to_dict(), "counts": counts, "store": store.dialect, "path": path}


def _filters(args: argparse.Namespace):
    """The --vote-* filters, checked (one sentence for a bad value)."""
    from workbench.training.votes import VoteFilters

    return VoteFilters(
        checkpoints=tuple(args.vote_checkpoint or ()),
        raters=tuple(args.vote_rater or ()),
        same_settings=args.vote_same_settings,
        min_agreement=args.vote_min_agreement,
        rater_kind=args.vote_raters,
        source=args.vote_source,
        unreviewed=args.vote_unreviewed,
    )


def _correction_examples(args: argparse.Namespace, settings):
    """Write the run's SFT examples from the store's corrections; returns the file's path."""
    from workbench.store import Store
    from workbench.training.checkpoints import check_run_folder
    from workbench.training.corrections import sft_path, write_corrections_sft

    filters = _filters(args)
    check_run_folder(RunPaths.of(settings, args.name), resume=False)  # never overwrite a run's examples
    path = sft_path(settings, args.name)
    with Store.open(settings) as store:
        counts = write_corrections_sft(store, settings, filters, path)
    print(f"{counts.get('corrections', 0)} corrections -> {counts['examples']} SFT examples.", file=sys.stderr)
    return path


def _like_records(args: argparse.Namespace, settings) -> dict[str, object]:
    """Write the run's liked and disliked replies from the store; returns the filters, counts and the file's path."""
    from workbench.store import Store
    from workbench.training.checkpoints import check_run_folder
    from workbench.training.likes import LikeFilters, describe, likes_path, write_like_records

    filters = LikeFilters(
        checkpoints=tuple(args.like_checkpoint or ()),
        raters=tuple(args.like_rater or ()),
        rater_kind=args.like_raters,
        origin=args.like_origin,
        since=args.like_since,
        until=args.like_until,
    )
    check_run_folder(RunPaths.of(settings, args.name), resume=False)  # never overwrite a run's replies
    path = likes_path(settings, args.name)
    with Store.open(settings) as store:
        counts = write_like_records(store, settings, filters, path)
    print(describe(counts), file=sys.stderr)
    return {"filters": filters.to_dict(), "counts": counts, "store": store.dialect, "path": path}


def _cancel_on_signals(cancel: threading.Event) -> None:
    def stop(signum, frame):
        if cancel.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        cancel.set()
        print(f"\n{signal.Signals(signum).name}: stopping after the current step.", file=sys.stderr)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    config = job_config(args, settings)
    out = sys.stderr if args.json else sys.stdout

    def echo(text: str) -> None:
        print(text, file=out, flush=True)

    if args.validate_only:
        from workbench.training.memory import require_fit
        from workbench.training.prepare import prepare_data

        data = prepare_data(config, settings, echo=echo)
        echo(data.summary())
        fit = require_fit(config, settings, data.base)  # the estimate, or the refusal of a run that cannot fit
        if fit:
            echo(fit)
        if args.json:
            print_json(
                {
                    "train": data.train_report.to_dict(),
                    "validation": data.val_report.to_dict() if data.val_report else None,
                    "train_examples": len(data.train),
                    "validation_examples": len(data.val),
                    "memory": fit,
                }
            )
        return 0
    from workbench.training.trainer import run_job

    cancel = threading.Event()
    _cancel_on_signals(cancel)
    summary = run_job(
        config, settings, resume=args.resume, progress=not args.quiet, echo=echo, cancel=cancel, store=not args.no_store
    )
    if summary is None:
        return 0  # another process of a distributed run reports
    if args.json:
        print_json(summary)
    else:
        _print_summary(summary)
    return 130 if summary["status"] == "cancelled" else 0


def _print_summary(s: dict) -> None:
    def num(value) -> str:
        return "-" if value is None else f"{value:.4f}"

    print(
        f"Run {s['run']}: {s['status']} at step {s['step']} of {s['max_steps']} in {s['wall_time_s']:.0f} s "
        f"({s['tokens_per_s'] or '-'} tokens/s)."
    )
    print(
        f"Train loss {num(s['train_loss'])}; validation loss {num(s['val_loss_start'])} at the start, "
        f"{num(s['val_loss_end'])} at the end, {num(s['val_loss_best'])} best."
    )
    if s["adapter"]:
        print(
            f"Adapter {s['adapter']!r} (from {s['final_checkpoint']}) is at {s['adapter_path']}; "
            f"chat with it: workbench chat --adapter {s['adapter']}"
        )
    else:
        print(f"No final adapter; continue with: workbench train --name {s['run']} --resume")
