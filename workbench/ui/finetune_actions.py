"""What the Fine-tune tab's buttons do: validate the chosen data, start, cancel and resume training jobs.

Each `make_*_fn` returns the function behind a button, which is also a named API endpoint (see
`workbench.ui.finetune` for the signatures). Bad input becomes a gr.Error with one sentence (what a client
gets); `on_page` turns that into the status line's sentence for the page's own buttons. The admin token is
checked in every function that starts or stops a job, so the API is guarded like the page.
"""

from __future__ import annotations

import functools
import hashlib
import html
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from workbench.config import REPO_ROOT
from workbench.errors import WorkbenchError
from workbench.generation.router import request_name
from workbench.registry import BaseModel, served_bases, standalone
from workbench.safety.names import within
from workbench.training import hparams, jobs
from workbench.training.config import JobConfig, RunPaths
from workbench.training.filters import PREFIX
from workbench.ui.context import AppContext, caller_of, user_error
from workbench.ui.finetune_form import form_hyperparameters

DATA_DIR = REPO_ROOT / "data"


def shipped_datasets() -> list[str]:
    """Training files shipped under data/ (held-out files excluded), relative to the repository."""
    files = sorted(p for ext in ("*.jsonl", "*.json", "*.csv") for p in DATA_DIR.glob(f"*/{ext}"))
    return [str(p.relative_to(REPO_ROOT)) for p in files if "heldout" not in p.name]


def _upload_path(ctx: AppContext, upload: str) -> str:
    """An uploaded file's path, only where the app keeps uploads (Gradio's upload folder, var/datasets/): a direct
    API call cannot name another server file."""
    from gradio.utils import get_upload_folder

    for root in (Path(get_upload_folder()), ctx.settings.var_dir / "datasets"):
        try:
            return str(within(root, upload, "upload"))
        except WorkbenchError:
            continue
    raise WorkbenchError(f"{Path(str(upload)).name!r} is not a file this app received; upload it again.")


def _dataset_path(ctx: AppContext, upload: str | None, dataset: str | None) -> str:
    if upload:
        return _upload_path(ctx, upload)
    if not dataset:
        raise WorkbenchError("Upload a dataset file or pick one of the shipped datasets.")
    if not isinstance(dataset, str) or dataset not in shipped_datasets():
        raise WorkbenchError(f"{dataset!r} is not one of the shipped datasets.")
    return str(within(DATA_DIR, REPO_ROOT / dataset, "dataset", folder="the shipped data folder"))


def _keep_upload(ctx: AppContext, path: str | None) -> str | None:
    """Copy an uploaded file out of Gradio's cache into var/datasets/ (the job reads it for hours)."""
    if not path or DATA_DIR.resolve() in Path(path).resolve().parents:
        return path
    source = Path(path)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    target = ctx.settings.var_dir / "datasets" / digest / source.name  # the run records the file's own name
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copyfile(source, target)
    return str(target)


def family(ctx: AppContext, name: str | None) -> BaseModel:
    """The served family a run trains: the one called `name`, the main one when `name` is empty; one sentence for
    any other name (the server trusts no name the page offered)."""
    families = [b for b in served_bases(ctx.settings) if b.usable]
    if not name:
        return families[0]
    for base in families:
        if base.name == name:
            return base
    shown = name if isinstance(name, str) and len(name) <= 100 else "that model"
    raise WorkbenchError(
        f"{shown!r} is not a base model served here: train one of {', '.join(b.name for b in families)}."
    )


def run_family(ctx: AppContext, run: str) -> BaseModel | None:
    """The served family other than the main one that `run` trains (its job.json says, once the job has prepared),
    else None: its checkpoints are requested as FAMILY/RUN (`router.request_name`)."""
    from workbench.training.checkpoints import load_job

    try:
        trained = load_job(RunPaths.of(ctx.settings, run)).get("base_model")
    except WorkbenchError:
        return None
    return next((b for b in served_bases(ctx.settings)[1:] if b.name == trained), None)


def job_model(ctx: AppContext, base: BaseModel) -> str | None:
    """JobConfig.base_model for a run on the served family `base`: None for the main one (the job's default), else
    what names it alone (the job's `--model`)."""
    return None if base == family(ctx, None) else standalone(ctx.settings, base)


class Tokenizers:
    """Each served family's tokenizer, loaded once per app (validation needs it; the model it does not)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = {}

    def get(self, ctx: AppContext, base: BaseModel) -> Any:
        from workbench.generation.loading import load_tokenizer

        ctx.settled()
        with self._lock:
            if base.name not in self._cache:
                self._cache[base.name] = load_tokenizer(base, ctx.settings)
            return self._cache[base.name]


FORM = {f.name for f, _ in form_hyperparameters()}  # what the "train" endpoint takes by name
VOTE = PREFIX  # the prefix of a filter's input: vote_<field of training.filters>


def _config(ctx: AppContext, run: str, data: str, val: str | None, values: dict[str, Any]) -> JobConfig:
    """The job from the form's values (by field name) and the family it trains (`base_model`, a served family's
    name: the main one is the job's default model); JobConfig checks each one and answers in one sentence."""
    values = dict(values)
    model = job_model(ctx, family(ctx, values.pop("base_model", None)))
    unknown = sorted(set(values) - FORM - {"votes", "likes"})
    if unknown:
        raise WorkbenchError(f"Unknown training settings: {', '.join(unknown)}.")
    clean = dict(values)
    if "target_modules" in clean:
        clean["target_modules"] = hparams.parse_list(clean["target_modules"])
    if "init_adapter" in clean:
        clean["init_adapter"] = str(clean["init_adapter"] or "").strip() or None
    return JobConfig(run=(run or "").strip(), data=data, val_data=val or None, base_model=model, **clean)


def _vote_inputs(values: dict[str, Any]) -> dict[str, Any]:
    """Take the filters' inputs (`vote_<field>`) out of an endpoint's keyword values."""
    return {k: values.pop(k) for k in [k for k in values if k.startswith(VOTE)]}


def _store_data(
    ctx: AppContext, run: str, write: bool, method: str, inputs: dict[str, Any]
) -> tuple[str, dict[str, Any] | None, str]:
    """Training on the store's feedback, the source the method picks (`training.sources`: DPO on votes, KTO on
    likes, SFT on corrections): (the file, the record for the job's field, the counts sentence). Only `write`
    writes the file (Start); the validation report only counts."""
    from workbench.store import Store
    from workbench.training.sources import for_method
    from workbench.ui.finetune_filters import source_filters

    source = for_method(method)
    filters = source_filters(source.filters, inputs)
    path = source.path(ctx.settings, run)
    with Store.open(ctx.settings) as store:
        if write:
            counts = source.write(store, ctx.settings, filters, path)
        else:
            counts = source.count(store, ctx.settings, filters)[1]
        dialect = store.dialect
    return str(path), {"filters": filters.to_dict(), "counts": counts, "store": dialect}, source.describe(counts)


def validate(
    ctx: AppContext,
    tokenizers: Tokenizers,
    upload,
    dataset,
    val_upload,
    val_fraction,
    max_length,
    seed,
    token=None,
    method="sft",
    from_votes=False,
    request: gr.Request | None = None,
    batch_size=4,
    gradient_checkpointing=False,
    base_model=None,
    **vote_filters,
):
    """The validation report for the chosen files (or the votes under the filters) with the run's memory estimate,
    and whether training may start (an admin action: it reads and tokenizes the upload)."""
    from workbench.training.memory import require_fit
    from workbench.training.prepare import prepare_data

    refusal = ctx.admin_refusal(token, request)
    if refusal is not None:
        return f"**Not checked:** {html.escape(refusal, quote=False)}", gr.update(interactive=False)
    try:
        if from_votes:
            counted = _store_data(ctx, "validation", False, method, vote_filters)[2]
            return f"**The store's feedback**  \n{counted}", gr.update(interactive=True)
        data = _dataset_path(ctx, upload, dataset)
        base = family(ctx, base_model)
        config = JobConfig(
            method=method if method in ("sft", "dpo", "kto") else "sft",
            run="validation",
            data=data,
            val_data=_upload_path(ctx, val_upload) if val_upload else None,
            val_fraction=val_fraction,
            max_length=max_length,
            seed=seed,
            batch_size=batch_size,
            gradient_checkpointing=bool(gradient_checkpointing),
            base_model=job_model(ctx, base),
        )
        key = (_file_state(config.data), _file_state(config.val_data), config.val_fraction, config.max_length)
        key += (config.seed, config.method, base.name)
        if key not in _REPORTS:  # every page load validates the preselected dataset: once per file state
            summary = prepare_data(config, ctx.settings, tokenizers.get(ctx, base)).summary()
            if len(_REPORTS) >= 64:
                _REPORTS.clear()
            _REPORTS[key] = summary.replace("\n  ", "\n- ").replace("\n", "  \n")
        fit = require_fit(config, ctx.settings, base)  # memory changes: never cached
    except WorkbenchError as exc:
        return f"**Not usable:** {exc}", gr.update(interactive=False)
    return f"**Validation report**  \n{_REPORTS[key]}  \n{fit}", gr.update(interactive=True)


ARENA_PROMPTS = 8  # prompts a new checkpoint and its parent answer for the Arena (a few minutes on a CPU)
_REPORTS: dict[tuple, str] = {}  # (files' states, split and length settings) -> the validation report's text


def _file_state(path: str | None) -> tuple | None:
    """A file's identity and state: its path, inode, size and modification time (a changed file is a new key)."""
    if not path:
        return None
    try:
        stat = Path(path).stat()
    except OSError:
        return (path,)
    return path, stat.st_ino, stat.st_size, stat.st_mtime_ns


def make_train_fn(ctx: AppContext, tokenizers: Tokenizers):
    """The function behind the Start button and the "train" API endpoint (it validates the data and the memory
    estimate first)."""
    from workbench.training.memory import require_fit
    from workbench.training.prepare import prepare_data

    def train(
        upload: str | None = None,
        dataset: str | None = None,
        val_upload: str | None = None,
        run_name: str = "",
        token: str | None = None,
        from_votes: bool = False,
        request: gr.Request = None,
        **values: Any,
    ):
        votes = _vote_inputs(values)  # vote_checkpoints, ...: the rest are hyperparameters
        try:
            ctx.settings.check_admin(token, caller_of(ctx, request))
            val = _keep_upload(ctx, _upload_path(ctx, val_upload) if val_upload else None)
            if from_votes:
                from workbench.training.checkpoints import check_run_folder
                from workbench.training.sources import for_method

                # the run's name is checked before it names a file
                checked = _config(ctx, run_name, "votes.jsonl", val, values)
                check_run_folder(RunPaths.of(ctx.settings, checked.run), resume=False)  # never overwrite its data
                data, record, _ = _store_data(ctx, checked.run, True, checked.method, votes)
                job = for_method(checked.method).job
                if job:
                    values[job] = record
            else:
                data = _keep_upload(ctx, _dataset_path(ctx, upload, dataset))
            config = _config(ctx, run_name, data, val, values)
            base = family(ctx, values.get("base_model"))
            prepared = prepare_data(
                config, ctx.settings, tokenizers.get(ctx, base)
            )  # refuse bad data here, not in the log
            require_fit(config, ctx.settings, prepared.base)  # and a run that cannot fit the machine's memory
            jobs.start_training(ctx.settings, config, token=token)
        except WorkbenchError as exc:
            raise user_error(exc) from None
        started = f"Started **{config.run}**: the chart follows its progress."
        return started, gr.update(choices=run_names(ctx), value=config.run), suggest_name()

    return train


def make_send_fn(ctx: AppContext):
    """The function behind "Send to the Arena" and the "send_to_arena" API endpoint: the run's final adapter and
    its parent answer the Arena's first prompts, so the next votes compare them."""

    def send(run_name, token, request: gr.Request = None):
        from workbench.store import Store
        from workbench.studio.arena_send import send_to_arena
        from workbench.ui.arena import ARENA_SETTINGS

        try:
            ctx.settings.check_admin(token, caller_of(ctx, request))
            run = RunPaths.of(ctx.settings, (run_name or "").strip()).run  # the name is checked first
            checkpoint = request_name(run_family(ctx, run), run)
            with Store.open(ctx.settings) as store:
                sent = send_to_arena(ctx.router(), store, ctx.settings, checkpoint, ARENA_SETTINGS, limit=ARENA_PROMPTS)
        except WorkbenchError as exc:
            raise user_error(exc) from None
        return (
            f"**{sent['checkpoint']}** and its parent **{sent['parent']}** answered {sent['prompts']} Arena prompts "
            f"({sent['generated']} new outputs): the Arena serves their pairs next."
        )

    return send


def make_cancel_fn(ctx: AppContext):
    """The function behind the Cancel button and the "cancel_training" API endpoint."""

    def cancel(run_name, token, request: gr.Request = None):
        try:
            ctx.settings.check_admin(token, caller_of(ctx, request))
            stopped = jobs.cancel_training(ctx.settings, (run_name or "").strip(), token=token)
        except WorkbenchError as exc:
            raise user_error(exc) from None
        return f"Cancelling **{run_name}** after its current step." if stopped else f"**{run_name}** is not running."

    return cancel


def make_resume_fn(ctx: AppContext):
    """The function behind the Resume button and the "resume_training" API endpoint."""

    def resume(run_name, token, request: gr.Request = None):
        try:
            ctx.settings.check_admin(token, caller_of(ctx, request))
            jobs.resume_training(ctx.settings, (run_name or "").strip(), token=token)
        except WorkbenchError as exc:
            raise user_error(exc) from None
        return f"Resuming **{run_name}** from its last complete checkpoint."

    return resume


def on_page(fn: Callable, refused: str, outputs: int) -> Callable:
    """The page's version of an endpoint function: its refusal becomes the status line's sentence ("Not started:
    ..."), and its other outputs stay as they were."""

    @functools.wraps(fn)
    def page(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error as exc:
            sentence = f"**{refused}:** {exc.message}"
            return sentence if outputs == 1 else (sentence, *[gr.skip()] * (outputs - 1))

    page.__name__ = f"{fn.__name__}_on_page"  # Gradio names an event after its function: not the endpoint's name
    return page


def vote_checkpoint_choices(
    ctx: AppContext, on: bool, token: str | None = None, request: gr.Request | None = None
) -> tuple[dict, dict]:
    """The vote filters shown when training on the store's votes, offering the checkpoints with stored outputs."""
    if not on or ctx.admin_refusal(token, request) is not None:  # the store's checkpoints are the operator's
        return gr.update(visible=bool(on)), gr.update()
    from workbench.store import Store

    try:
        with Store.open(ctx.settings) as store:
            frame = store.checkpoints()
    except WorkbenchError:
        return gr.update(visible=True), gr.update()  # the report says what is wrong with the store
    names = [str(n) for n, count in zip(frame["name"], frame["generations"], strict=True) if count]
    return gr.update(visible=True), gr.update(choices=names)


def run_names(ctx: AppContext) -> list[str]:
    """Runs to show, newest first."""
    return [r.run for r in jobs.list_runs(ctx.settings)]


def suggest_name() -> str:
    """A fresh run name from the time of day."""
    return time.strftime("run-%Y%m%d-%H%M%S")
