"""The Fine-tune tab: pick or upload a dataset, read its validation report, train a LoRA adapter, watch the loss.

Training runs as a separate process (`workbench.training.jobs`), so the chat stays responsive; this tab only reads
the run's log every few seconds to redraw the loss chart. Checkpoints land in the adapters folder,
where the Chat tab's selector finds them without a restart. Starting, cancelling and resuming need the
admin token when WORKBENCH_ADMIN_TOKEN is set, in the page and in the named API endpoints (by keyword):

    train(upload, dataset, val_upload, run_name, token, from_votes, base_model, vote_<each filter>,
          <every hyperparameter on the form, by its JobConfig name>) -> (status, runs, next name)
    cancel_training(run_name, token) -> status     (stops after the current step; the run stays resumable)
    send_to_arena(run_name, token) -> status       (the run's adapter and its parent answer the Arena's prompts)
    resume_training(run_name, token) -> status     (continues from the last complete checkpoint)

Every `train` parameter has the form's starting value as its default (the demo recipe), so a client names only what it
changes: `client.predict(dataset="data/fastchat_identity/train.jsonl", run_name="x", max_steps=4, api_name="/train")`.
The hyperparameters are JobConfig's declarations (`workbench.ui.finetune_form`; the list is in docs/reference.md). With
`from_votes` a run trains on the store's feedback (no file), the method picking the source
(`workbench.training.sources`): "dpo" its decisive votes (`vote_source` "edit": corrections as pairs), "kto" the chat's
likes and dislikes, "sft" its corrections; each under the filters `vote_<field>` of `workbench.training.filters`
(checkpoints, raters, rater_kind, origin, since, until; for dpo also same_settings, min_agreement, source, unreviewed),
as `workbench train`'s `--vote-*` flags. A DPO or KTO run's chart adds its reward margin (and DPO's accuracy). `upload`
is a dataset file (gradio_client's `handle_file`), or None to train on `dataset`, a shipped file's path relative to the
repository. `base_model` is the served family the run trains (the main one by default; `workbench train --model`
on the command line), and a run on another family is listed as FAMILY/RUN. The data is validated before a job
starts. An endpoint refuses bad input with one sentence (an error for a client); the page's buttons write that
sentence into the status line under them instead."""

from __future__ import annotations

import html
from types import SimpleNamespace

import gradio as gr

from workbench.errors import WorkbenchError
from workbench.generation.router import request_name
from workbench.registry import BaseModel
from workbench.training import jobs
from workbench.ui.context import AppContext
from workbench.ui.finetune_actions import (
    Tokenizers,
    make_cancel_fn,
    make_resume_fn,
    make_send_fn,
    make_train_fn,
    on_page,
    run_family,
    run_names,
    shipped_datasets,
    suggest_name,
    validate,
    vote_checkpoint_choices,
)
from workbench.ui.finetune_form import HyperparameterForm

REFRESH_S = 2.0  # how often an open page redraws the loss chart and progress
NAME_CHARS = 128  # a run name (workbench.safety.names checks it further)
TOKEN_CHARS = 512  # the admin token box: longer than any token a person sets
NO_RUN = "No loss yet: start a run and its training and validation loss appear here."


def _figure(curves: dict[str, list[tuple[int, float]]], run: str, empty: str = NO_RUN):
    from workbench.training.losses import loss_frame
    from workbench.views import plots

    return plots.loss_curves(loss_frame(curves), title=f"Loss: {run}" if run else "Loss", empty=empty)


def _buttons(state: jobs.RunStatus | None) -> tuple[dict, dict, dict]:
    """Cancel, Resume and Send to the Arena: live only when they can act on the chosen run."""
    active = state is not None and state.active
    resumable = state is not None and not active and state.status not in ("finished", "stopped-early")
    sendable = state is not None and not active and state.adapter is not None
    return tuple(gr.update(interactive=bool(on)) for on in (active, resumable, sendable))


def _rewards(ctx: AppContext, refreshed: tuple) -> dict:
    """The reward chart for what `refresh` drew: redrawn with it, shown only for a DPO or KTO run's log."""
    from workbench.training.losses import reward_log
    from workbench.views import plots

    signature = refreshed[3]
    if refreshed[1] == gr.skip():
        return gr.skip()
    if not isinstance(signature, list) or len(signature) != 4:
        return gr.update(visible=False)
    frame = reward_log(ctx.settings, signature[0])
    if frame.empty:
        return gr.update(visible=False)
    return gr.update(value=plots.reward_curves(frame, title=f"Rewards: {signature[0]}"), visible=True)


def _progress_text(status: jobs.RunStatus, family: BaseModel | None = None) -> str:
    """The run's progress in a few lines; its checkpoints by the names requests use (FAMILY/RUN on `family`)."""

    def num(value: float | None) -> str:
        return "–" if value is None else f"{value:.4f}"

    total = status.max_steps or "?"
    parts = [f"**{status.run}**: {status.status}, step {status.step} of {total}"]
    if status.eta_s is not None:
        parts.append(f"about {status.eta_s / 60:.1f} min left")
    if status.tokens_per_s:
        parts.append(f"{status.tokens_per_s:.0f} tokens/s")
    lines = [", ".join(parts) + "."]
    lines.append(
        f"Train loss {num(status.train_loss)}; validation loss {num(status.val_loss_start)} at the start, "
        f"{num(status.val_loss)} now."
    )
    if status.checkpoints:
        shown = ", ".join(f"`{request_name(family, c)}`" for c in status.checkpoints)
        lines.append(f"Checkpoints (in the Chat tab's selector): {shown}")
    if status.adapter:
        lines.append(f"Final adapter: `{request_name(family, status.adapter)}`.")
    if status.error:
        lines.append(f"Error: {status.error}")
    return "  \n".join(lines)


def build_finetune_tab(ctx: AppContext) -> SimpleNamespace:
    """Lay out the Fine-tune tab and wire its events (call inside a gr.Blocks / gr.Tab context).

    Returns the tab's components and `on_load`, the arguments for `demo.load` that fill the run list and
    the chart and validate the preselected dataset when a page opens.
    """
    tokenizers = Tokenizers()
    tab = _layout(ctx, HyperparameterForm())
    check, check_args = _wire_check(ctx, tokenizers, tab)
    inputs = {name: c for name, c in tab.data.items() if name != "filters"}  # the data inputs, the vote filters
    inputs |= {"run_name": tab.run_name, "token": tab.token, "base_model": tab.base_model} | tab.form.components
    _wire_buttons(ctx, tokenizers, inputs, (tab.start, tab.cancel, tab.resume, tab.send), tab.runs, tab.status)
    buttons = (tab.cancel, tab.resume, tab.send)
    refresh_args = _wire_refresh(ctx, tab.runs, tab.plot, tab.progress, tab.rewards, tab.token, buttons)

    def load(run, shown, token_value, request: gr.Request = None, **values):
        refreshed = refresh_args["fn"](run, shown, token_value, request)
        return (*refreshed, *check(token=token_value, request=request, **values), suggest_name())

    tab.on_load = {
        "fn": load,
        "inputs": refresh_args["inputs"],  # the run, what is shown, the token
        "inputs_kwargs": {k: v for k, v in check_args["inputs_kwargs"].items() if k != "token"},
        "outputs": refresh_args["outputs"] + check_args["outputs"] + [tab.run_name],
        "api_visibility": "private",
    }
    tab.upload, tab.dataset = tab.data["upload"], tab.data["dataset"]
    return tab


def _layout(ctx: AppContext, form: HyperparameterForm) -> SimpleNamespace:
    """The tab's components: the form and its buttons on the left, the run's chart and progress on the right."""
    with gr.Row():
        with gr.Column(scale=2):
            base_model = _base_model_input(ctx)
            form.place(["method"])
            data = _data_inputs(form, shipped_datasets())
            report = gr.Markdown("", elem_id="ft-report")
            # a fresh name per page load
            run_name = gr.Textbox("", label="Run name", elem_id="ft-run-name", max_length=NAME_CHARS)
            with gr.Accordion("Hyperparameters", open=False, elem_id="ft-hyperparameters"):
                form.place_rest()
            token = gr.Textbox(
                label="Admin token",
                type="password",
                elem_id="ft-token",
                visible=ctx.settings.admin_token is not None,
                max_length=TOKEN_CHARS,
            )
            with gr.Row():
                start = gr.Button("Start training", variant="primary", interactive=False, elem_id="ft-start")
                # Until a run is chosen in "Run" (and can be cancelled, resumed or sent), these stay off.
                cancel = gr.Button("Cancel", variant="stop", interactive=False, elem_id="ft-cancel")
                resume = gr.Button("Resume", interactive=False, elem_id="ft-resume")
                send = gr.Button("Send to the Arena", interactive=False, elem_id="ft-send-arena")
            status = gr.Markdown("", elem_id="ft-status")
        with gr.Column(scale=3):
            runs = gr.Dropdown([], label="Run", elem_id="ft-runs", allow_custom_value=True)
            plot = gr.Plot(_figure({"train": [], "val": []}, ""), label="Loss", elem_id="ft-plot")
            rewards = gr.Plot(label="Rewards (DPO, KTO)", elem_id="ft-rewards", visible=False)
            progress = gr.Markdown("", elem_id="ft-progress")
    return SimpleNamespace(
        base_model=base_model,
        form=form,
        data=data,
        report=report,
        run_name=run_name,
        token=token,
        start=start,
        cancel=cancel,
        resume=resume,
        send=send,
        status=status,
        runs=runs,
        plot=plot,
        rewards=rewards,
        progress=progress,
    )


def _base_model_input(ctx: AppContext) -> gr.Dropdown:
    """The served family a run trains (shown when the app serves more than one): the gate takes only their names,
    and a run on another family than the main one is named FAMILY/RUN wherever checkpoints are listed."""
    from workbench.gate.fields import Choice
    from workbench.registry import served_bases
    from workbench.ui.fields import declare

    try:
        names = [b.name for b in served_bases(ctx.settings) if b.usable]
    except WorkbenchError:  # the main model is unusable: the page says so elsewhere, and no run can start
        names = []
    label = "Base model"
    dropdown = gr.Dropdown(
        names,
        value=names[0] if names else None,
        label=label,
        info="the served model the adapter is trained on; on another than the first, its checkpoints are FAMILY/RUN",
        visible=len(names) > 1,
        elem_id="ft-base-model",
    )
    return declare(dropdown, Choice(label, options=tuple(names)))


def _wire_check(ctx: AppContext, tokenizers: Tokenizers, tab: SimpleNamespace) -> tuple:
    """The validation report follows the data inputs (and the settings that change it); returns the check
    function and its event arguments."""
    data, hp = tab.data, tab.form.components
    checked = {name: c for name, c in data.items() if name != "filters"}
    # the memory estimate also follows the batch size and gradient checkpointing
    shown = ("val_fraction", "max_length", "seed", "method", "batch_size", "gradient_checkpointing")
    checked |= {name: hp[name] for name in shown} | {"token": tab.token, "base_model": tab.base_model}

    def check(request: gr.Request = None, **values):
        return validate(ctx, tokenizers, request=request, **values)

    check_args = {
        "fn": check,
        "inputs_kwargs": checked,
        "outputs": [tab.report, tab.start],
        "api_visibility": "private",
    }
    changed = (hp["method"], hp["val_fraction"], hp["gradient_checkpointing"], tab.base_model)
    for component in (*(c for n, c in data.items() if n != "filters"), *changed):
        component.change(**check_args)
    for component in (tab.token, hp["max_length"], hp["seed"], hp["batch_size"]):
        component.blur(**check_args)

    def vote_choices(on: bool, token_value: str | None = None, request: gr.Request = None):
        return vote_checkpoint_choices(ctx, on, token_value, request)

    data["from_votes"].change(
        vote_choices,
        [data["from_votes"], tab.token],
        [data["filters"], data["vote_checkpoints"]],
        api_visibility="private",
    )
    return check, check_args


def _data_inputs(form: HyperparameterForm, shipped: list[str]) -> dict[str, gr.components.Component]:
    """The dataset inputs: an upload or a shipped file, the validation file or fraction, and training on the store's
    feedback (the method picks the source, `training.sources`) with the filters `workbench train` has. A filter is
    an input named `vote_<field>` made from its declaration (`finetune_filters`): the dataset check and the "train"
    endpoint pass it on by that name, so a new filter needs only its declaration."""
    from workbench.ui.finetune_filters import filter_inputs

    out: dict[str, gr.components.Component] = {}
    out["from_votes"] = gr.Checkbox(
        False,
        label="Train on the store's feedback (no file): DPO on its votes (corrections as pairs: source edit), "
        "KTO on the chat's likes and dislikes, SFT on its corrections",
        elem_id="ft-from-votes",
    )
    with gr.Accordion("Which feedback", open=True, visible=False, elem_id="ft-vote-filters") as out["filters"]:
        out |= filter_inputs()
    out["upload"] = gr.File(
        label="Upload a dataset (.jsonl, .json or .csv)",
        file_types=[".jsonl", ".json", ".csv"],
        type="filepath",
        elem_id="ft-upload",
    )
    out["dataset"] = gr.Dropdown(
        shipped, value=shipped[0] if shipped else None, label="…or pick a shipped dataset", elem_id="ft-dataset"
    )
    with gr.Accordion("Validation data", open=False):
        out["val_upload"] = gr.File(
            label="Validation file (optional)",
            file_types=[".jsonl", ".json", ".csv"],
            type="filepath",
            elem_id="ft-val-upload",
        )
        form.place(["val_fraction"])
    return out


def _wire_buttons(ctx: AppContext, tokenizers: Tokenizers, inputs: dict, buttons: tuple, runs, status) -> None:
    """Start, Cancel, Resume and Send: each a named API endpoint without a trigger on the page (a client gets an
    error), and a private page event running the same function that writes its refusal into the status line
    under the buttons instead (no red badge, and no pop-up that follows the person to another tab)."""
    start, cancel, resume, send = buttons
    train = make_train_fn(ctx, tokenizers)
    outputs = [status, runs, inputs["run_name"]]
    start.click(on_page(train, "Not started", 3), inputs_kwargs=inputs, outputs=outputs, api_visibility="private")
    gr.on([], train, inputs_kwargs=inputs, outputs=outputs, api_name="train", concurrency_limit=None)
    for button, make, name, refused in (
        (cancel, make_cancel_fn, "cancel_training", "Not cancelled"),
        (resume, make_resume_fn, "resume_training", "Not resumed"),
        (send, make_send_fn, "send_to_arena", "Not sent"),
    ):
        fn = make(ctx)
        limit = {} if name == "send_to_arena" else {"concurrency_limit": None}
        token = inputs["token"]
        button.click(on_page(fn, refused, 1), [runs, token], [status], api_visibility="private", **limit)
        gr.on([], fn, [runs, token], [status], api_name=name, **limit)


def _wire_refresh(ctx, runs, plot, progress, rewards, token, buttons) -> dict:
    """The chart, progress and buttons follow the chosen run: on a timer, and when another run is chosen."""
    seen = gr.State(None)  # what the chart shows, so an unchanged log is not redrawn every tick

    def refresh(run: str | None, shown: list | None, token_value: str | None = None, request: gr.Request = None):
        off = _buttons(None)
        refusal = ctx.admin_refusal(token_value, request)  # runs, losses and logs are the operator's
        if refusal is not None:
            locked = ["locked", refusal]
            if shown == locked:
                return gr.skip(), gr.skip(), gr.skip(), shown, *off
            sentence = html.escape(refusal, quote=False)
            return (
                gr.update(choices=[], value=None),
                _figure({"train": [], "val": []}, "", sentence),
                sentence,
                locked,
                *off,
            )
        names = run_names(ctx)
        # A chosen run is never replaced here: a tick that left before Start answered still carries the old
        # choice, and a run that was just started may not be on disk yet. Only an empty choice is filled.
        choice = gr.update(choices=names)
        if not run:
            run = names[0] if names else None
            choice = gr.update(choices=names, value=run)
        if run is None:
            return choice, _figure({"train": [], "val": []}, ""), "No runs yet.", None, *off
        try:  # the choice can be any text (a custom value, a direct call): the run name is checked first
            state = jobs.run_status(ctx.settings, run)
        except WorkbenchError as exc:
            sentence = html.escape(str(exc), quote=False)
            return choice, _figure({"train": [], "val": []}, "", sentence), sentence, None, *off
        run = state.run
        log = ctx.settings.adapters_dir / run / "train_log.jsonl"
        signature = [run, log.stat().st_size if log.is_file() else 0, state.status, names]
        if signature == shown:
            return gr.skip(), gr.skip(), gr.skip(), shown, gr.skip(), gr.skip(), gr.skip()
        curves = jobs.loss_curves(ctx.settings, run)
        progress = _progress_text(state, run_family(ctx, run))
        return choice, _figure(curves, run), progress, signature, *_buttons(state)

    def refresh_all(run: str | None, shown: list | None, token_value: str | None = None, request: gr.Request = None):
        out = refresh(run, shown, token_value, request)
        return (*out[:4], _rewards(ctx, out), *out[4:])

    refresh_args = {
        "fn": refresh_all,
        "inputs": [runs, seen, token],
        "outputs": [runs, plot, progress, seen, rewards, *buttons],
        "api_visibility": "private",
        "show_progress": "hidden",
        # In the queue (and under its limits) in a lane of its own; a tick is cheap: it reads file states and
        # parses only log lines appended since the last tick (runlog.read_log).
        "concurrency_id": "finetune-refresh",
        "concurrency_limit": 2,
    }
    gr.Timer(REFRESH_S).tick(**refresh_args)
    runs.input(**refresh_args)
    return refresh_args
