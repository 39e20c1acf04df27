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
    workbench train --method kto --from-likes --vote-since 2026-12-01 --name x   # the chat's likes and dislikes
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
from pathlib import Path

from workbench.cli.common import add_model_flags, print_json, settings_from
from workbench.errors import WorkbenchError
from workbench.training import filters, hparams
from workbench.training.allocator import use_huge_pages, use_jemalloc
from workbench.training.config import JobConfig, RunPaths
from workbench.training.filters import FeedbackFilters

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
    store = p.add_argument_group("the store's feedback (instead of --data)")
    store.add_argument("--from-votes", action="store_true", help="DPO on the store's decisive votes")
    store.add_argument("--from-likes", action="store_true", help="KTO on the chat's current likes and dislikes")
    store.add_argument(
        "--from-corrections",
        action="store_true",
        help="SFT on the chat's corrections (the conversation answered with the edited reply)",
    )
    _add_filter_flags(p)
    _add_hyperparameters(p)
    add_model_flags(p)
    return p


def _every() -> type:
    """The filters class that declares every filter of every source (the votes': a superset of the others)."""
    from workbench.training.votes import VoteFilters

    return VoteFilters


def _add_filter_flags(p: argparse.ArgumentParser) -> None:
    """One flag per declared store-feedback filter (`workbench.training.filters`): those of every source, then the
    vote pairs' own. A flag left out is the filter's default."""
    common = {f.name for f in filters.declared(FeedbackFilters)}
    groups = {
        True: p.add_argument_group("filters of the store's feedback (votes, likes and corrections)"),
        False: p.add_argument_group("filters of the votes only (--from-votes)"),
    }
    for f in filters.declared(_every()):
        meta = f.metadata["filter"]
        group = groups[f.name in common]
        if isinstance(f.default, bool):
            group.add_argument(filters.flag(f), dest=f.name, action="store_true", help=meta["help"])
            continue
        default = f" (default: {f.default})" if f.default not in ((), None) else ""
        default = " (repeat)" if meta["repeat"] else default
        group.add_argument(
            filters.flag(f),
            dest=f.name,
            type=meta["kind"],
            action="append" if meta["repeat"] else "store",
            default=None,
            choices=meta["choices"] or None,
            metavar=meta["metavar"],
            help=meta["help"] + default,
        )


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
        given_filters = _given_filters(args)
        extra += [filters.flag(f) for f in filters.declared(_every()) if f.name in given_filters]
        if extra:
            raise WorkbenchError(
                f"--resume continues run {args.name!r} with its saved settings; leave out {', '.join(extra)}."
            )
        return JobConfig.from_dict(load_job(RunPaths.of(settings, args.name))["config"])
    from workbench.training.sources import SOURCES

    chosen = [source for source in SOURCES.values() if getattr(args, source.flag[2:].replace("-", "_"))]
    if len(chosen) > 1:
        raise WorkbenchError(f"Train on one of the store's sources, not {' and '.join(s.flag for s in chosen)}.")
    if not chosen:
        _filters(args, None)  # a filter without a source filters nothing: say so
        if not args.data:
            raise WorkbenchError("Name a training file with --data (or continue a run with --resume).")
        return JobConfig(run=args.name, data=args.data, val_data=args.val, base_model=args.model, **given)
    source = chosen[0]
    if args.data or given.get("method", source.method) != source.method:
        raise WorkbenchError(
            f"{source.flag} trains {source.method.upper()} on the store's {source.name}: "
            "leave out --data and other methods."
        )
    given["method"] = source.method
    record = _store_file(args, settings, source.name)
    data = str(record.pop("path"))
    if source.job:
        given[source.job] = record
    return JobConfig(run=args.name, data=data, val_data=args.val, base_model=args.model, **given)


def _given_filters(args: argparse.Namespace) -> dict[str, object]:
    """The store-feedback filters given as flags (field name -> value; a repeated flag's values as a tuple)."""
    values = {f.name: getattr(args, f.name) for f in filters.declared(_every())}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if v not in (None, False)}


def _filters(args: argparse.Namespace, cls: type | None):
    """The store-feedback filters of `cls` from their flags, checked (one sentence for a bad value, and for a
    filter the source does not have: a vote pairs' filter with likes, any filter without a source)."""
    given = _given_filters(args)
    wanted = {f.name for f in filters.declared(cls)} if cls else set()
    foreign = [filters.flag(f) for f in filters.declared(_every()) if f.name in set(given) - wanted]
    if foreign:
        where = "votes" if cls else "the store's feedback (--from-votes, --from-likes, --from-corrections)"
        raise WorkbenchError(f"{', '.join(foreign)} only filter {where}; leave them out here.")
    return cls(**given) if cls else None


def _store_file(args: argparse.Namespace, settings, source: str) -> dict[str, object]:
    """Write the run's training file from the store's feedback (`source`: votes, likes or corrections); returns
    the filters, the counts and the file's path."""
    from workbench.store import Store
    from workbench.training.checkpoints import check_run_folder
    from workbench.training.sources import SOURCES

    spec = SOURCES[source]
    chosen = _filters(args, spec.filters)
    check_run_folder(RunPaths.of(settings, args.name), resume=False)  # never overwrite a run's data
    path = spec.path(settings, args.name)
    with Store.open(settings) as store:
        counts = spec.write(store, settings, chosen, path)
        dialect = store.dialect
    print(spec.describe(counts), file=sys.stderr)
    return {"filters": chosen.to_dict(), "counts": counts, "store": dialect, "path": path}


def _cancel_on_signals(cancel: threading.Event) -> None:
    def stop(signum, frame):
        if cancel.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        cancel.set()
        print(f"\n{signal.Signals(signum).name}: stopping after the current step.", file=sys.stderr)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _is_the_program() -> bool:
    """Whether this process is `workbench` itself (its command or `python -m workbench`, as the job runner starts
    it), not a test or another program calling `main`: only then may `train` re-execute it (`use_jemalloc`)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return (spec is not None and spec.name == "workbench.__main__") or Path(sys.argv[0]).name == "workbench"


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    allocator = ""
    if _is_the_program() and not args.validate_only:
        allocator = use_jemalloc(settings.train_allocator)  # may re-execute this process, once, with it preloaded
    use_huge_pages()  # before anything imports torch: it reads the switch at its first allocation
    config = job_config(args, settings)
    out = sys.stderr if args.json else sys.stdout

    def echo(text: str) -> None:
        print(text, file=out, flush=True)

    if allocator:
        echo(allocator)

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
