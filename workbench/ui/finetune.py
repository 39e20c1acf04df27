"""The Fine-tune tab: pick or upload a dataset, read its validation report, train a LoRA adapter, watch the loss.

Training runs as a separate process (`workbench.training.jobs`), so the chat stays responsive; this tab only reads
the run's log every few seconds to redraw the loss chart. Checkpoints land in the adapters folder,
where the Chat tab's selector finds them without a restart. Starting, cancelling and resuming need the
admin token when WORKBENCH_ADMIN_TOKEN is set, in the page and in the named API endpoints:

    train(upload, dataset, val_upload, val_fraction, run_name, token, learning_rate, max_steps, epochs,
          batch_size, grad_accum, max_length, lora_r, lora_alpha, lora_dropout, target_modules, warmup,
          weight_decay, eval_steps, save_steps, patience, seed, packing, beta, loss_type, init_adapter,
          report_to, method, from_votes) -> (status, runs, next run name)
    cancel_training(run_name, token) -> status     (stops after the current step; the run stays resumable)
    send_to_arena(run_name, token) -> status       (the run's adapter and its parent answer the Arena's prompts)
    resume_training(run_name, token) -> status     (continues from the last complete checkpoint)

`method` is "sft" (conversations) or "dpo" (prompt/chosen/rejected pairs, or with `from_votes` the store's
decisive votes, no file); a DPO run's chart adds its reward margin and accuracy, train and validation. The last
six arguments may be left out (SFT, a new LoRA, no tracker).
`upload` is a dataset file (gradio_client's `handle_file`), or None to train on `dataset`, a shipped
file's path relative to the repository (the dropdown's choices). The data is validated before a job starts.
"""

from __future__ import annotations

import html
from dataclasses import fields
from types import SimpleNamespace

import gradio as gr

from workbench.errors import WorkbenchError
from workbench.training import jobs
from workbench.training.config import DEMO_SETTINGS, LOSS_TYPES, METHODS, PACKING, REPORT_TO, JobConfig
from workbench.ui.context import AppContext
from workbench.ui.finetune_actions import (
    Tokenizers,
    make_cancel_fn,
    make_resume_fn,
    make_send_fn,
    make_train_fn,
    run_names,
    shipped_datasets,
    suggest_name,
    validate,
)

REFRESH_S = 2.0  # how often an open page redraws the loss chart and progress
# The form starts from the demo recipe's settings (`make finetune-demo`): minutes on 2 CPU cores.
DEFAULTS = SimpleNamespace(**({f.name: f.default for f in fields(JobConfig)} | DEMO_SETTINGS))


def _figure(curves: dict[str, list[tuple[int, float]]], run: str):
    from workbench.training.losses import loss_frame
    from workbench.ui import plots

    return plots.loss_curves(loss_frame(curves), title=f"Loss: {run}" if run else "Loss")


def _rewards(ctx: AppContext, refreshed: tuple) -> dict:
    """The reward chart for what `refresh` drew: redrawn with it, shown only for a DPO run's log."""
    from workbench.training.losses import reward_log
    from workbench.ui import plots

    signature = refreshed[3]
    if refreshed[1] == gr.skip():
        return gr.skip()
    if not isinstance(signature, list) or len(signature) != 4:
        return gr.update(visible=False)
    frame = reward_log(ctx.settings, signature[0])
    if frame.empty:
        return gr.update(visible=False)
    return gr.update(value=plots.reward_curves(frame, title=f"Rewards: {signature[0]}"), visible=True)


def _progress_text(status: jobs.RunStatus) -> str:
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
        lines.append("Checkpoints (in the Chat tab's selector): " + ", ".join(f"`{c}`" for c in status.checkpoints))
    if status.adapter:
        lines.append(f"Final adapter: `{status.adapter}`.")
    if status.error:
        lines.append(f"Error: {status.error}")
    return "  \n".join(lines)


def _hyperparameter_inputs() -> list[gr.components.Component]:
    d = DEFAULTS
    with gr.Accordion("Hyperparameters", open=False, elem_id="ft-hyperparameters"):
        with gr.Row():
            lr = gr.Number(d.learning_rate, label="Learning rate", min_width=110, elem_id="ft-learning-rate")
            steps = gr.Number(
                d.max_steps, precision=0, label="Max steps (0 = use epochs)", min_width=110, elem_id="ft-max-steps"
            )
            epochs = gr.Number(d.epochs, label="Epochs", min_width=110, elem_id="ft-epochs")
        with gr.Row():
            batch = gr.Number(d.batch_size, precision=0, label="Batch size", min_width=110, elem_id="ft-batch-size")
            accum = gr.Number(
                d.grad_accum, precision=0, label="Gradient accumulation", min_width=110, elem_id="ft-grad-accum"
            )
            length = gr.Number(
                d.max_length, precision=0, label="Max length (tokens)", min_width=110, elem_id="ft-max-length"
            )
        with gr.Row():
            rank = gr.Number(d.lora_r, precision=0, label="LoRA rank", min_width=110, elem_id="ft-lora-r")
            alpha = gr.Number(d.lora_alpha, precision=0, label="LoRA alpha", min_width=110, elem_id="ft-lora-alpha")
            dropout = gr.Number(d.lora_dropout, label="LoRA dropout", min_width=110, elem_id="ft-lora-dropout")
        targets = gr.Textbox(
            ",".join(d.target_modules),
            label="Target modules (comma-separated, or all-linear)",
            elem_id="ft-target-modules",
        )
        with gr.Row():
            warmup = gr.Number(d.warmup, label="Warmup (steps, or fraction < 1)", min_width=110, elem_id="ft-warmup")
            decay = gr.Number(d.weight_decay, label="Weight decay", min_width=110, elem_id="ft-weight-decay")
            seed = gr.Number(d.seed, precision=0, label="Seed", min_width=110, elem_id="ft-seed")
        with gr.Row():
            eval_steps = gr.Number(
                d.eval_steps, precision=0, label="Eval every N steps", min_width=110, elem_id="ft-eval-steps"
            )
            save_steps = gr.Number(
                d.save_steps, precision=0, label="Save every N steps", min_width=110, elem_id="ft-save-steps"
            )
            patience = gr.Number(
                d.patience, precision=0, label="Early-stopping patience (0 = off)", min_width=110, elem_id="ft-patience"
            )
        packing = gr.Radio(list(PACKING), value=d.packing, label="Packing", elem_id="ft-packing")
        with gr.Row():
            beta = gr.Number(d.beta, label="DPO beta", min_width=110, elem_id="ft-beta")
            loss = gr.Dropdown(list(LOSS_TYPES), value=d.loss_type, label="DPO loss", elem_id="ft-loss-type")
            init = gr.Textbox("", label="Start from adapter (e.g. an SFT run)", elem_id="ft-init-adapter")
        report = gr.Dropdown(list(REPORT_TO), value=d.report_to, label="Report to (tracker)", elem_id="ft-report-to")
    return [
        lr,
        steps,
        epochs,
        batch,
        accum,
        length,
        rank,
        alpha,
        dropout,
        targets,
        warmup,
        decay,
        eval_steps,
        save_steps,
        patience,
        seed,
        packing,
        beta,
        loss,
        init,
        report,
    ]


def build_finetune_tab(ctx: AppContext) -> SimpleNamespace:
    """Lay out the Fine-tune tab and wire its events (call inside a gr.Blocks / gr.Tab context).

    Returns the tab's components and `on_load`, the arguments for `demo.load` that fill the run list and
    the chart and validate the preselected dataset when a page opens.
    """
    tokenizers = Tokenizers()
    shipped = shipped_datasets()
    with gr.Row():
        with gr.Column(scale=2):
            with gr.Row():
                method = gr.Radio(
                    list(METHODS),
                    value="sft",
                    label="Method: sft (conversations) or dpo (prompt/chosen/rejected pairs)",
                    elem_id="ft-method",
                )
                from_votes = gr.Checkbox(False, label="DPO on the store's votes (no file)", elem_id="ft-from-votes")
            upload = gr.File(
                label="Upload a dataset (.jsonl, .json or .csv)",
                file_types=[".jsonl", ".json", ".csv"],
                type="filepath",
                elem_id="ft-upload",
            )
            dataset = gr.Dropdown(
                shipped, value=shipped[0] if shipped else None, label="…or pick a shipped dataset", elem_id="ft-dataset"
            )
            with gr.Accordion("Validation data", open=False):
                val_upload = gr.File(
                    label="Validation file (optional)",
                    file_types=[".jsonl", ".json", ".csv"],
                    type="filepath",
                    elem_id="ft-val-upload",
                )
                val_fraction = gr.Slider(
                    0,
                    0.5,
                    value=DEFAULTS.val_fraction,
                    step=0.01,
                    elem_id="ft-val-fraction",
                    label="Held-out fraction of the training file (without a validation file)",
                )
            report = gr.Markdown("", elem_id="ft-report")
            run_name = gr.Textbox("", label="Run name", elem_id="ft-run-name")  # a fresh name per page load
            hparams = _hyperparameter_inputs()
            token = gr.Textbox(
                label="Admin token", type="password", elem_id="ft-token", visible=ctx.settings.admin_token is not None
            )
            with gr.Row():
                start = gr.Button("Start training", variant="primary", interactive=False, elem_id="ft-start")
                cancel = gr.Button("Cancel", variant="stop", elem_id="ft-cancel")
                resume = gr.Button("Resume", elem_id="ft-resume")
                send = gr.Button("Send to the Arena", elem_id="ft-send-arena")
            status = gr.Markdown("", elem_id="ft-status")
        with gr.Column(scale=3):
            runs = gr.Dropdown([], label="Run", elem_id="ft-runs", allow_custom_value=True)
            plot = gr.Plot(label="Loss", elem_id="ft-plot")
            rewards = gr.Plot(label="Rewards (DPO)", elem_id="ft-rewards", visible=False)
            progress = gr.Markdown("", elem_id="ft-progress")

    def check(
        upload_path,
        chosen,
        val_path,
        fraction,
        max_length,
        seed_value,
        token_value,
        method_value,
        votes,
        request: gr.Request = None,
    ):
        args = (upload_path, chosen, val_path, fraction, max_length, seed_value, token_value, method_value, votes)
        return validate(ctx, tokenizers, *args, request=request)

    check_args = {
        "fn": check,
        "inputs": [upload, dataset, val_upload, val_fraction, hparams[5], hparams[15], token, method, from_votes],
        "outputs": [report, start],
        "api_visibility": "private",
    }
    for component in (upload, dataset, val_upload, val_fraction, method, from_votes):
        component.change(**check_args)
    token.blur(**check_args)
    hparams[5].blur(**check_args)
    start.click(
        make_train_fn(ctx, tokenizers),
        [upload, dataset, val_upload, val_fraction, run_name, token, *hparams, method, from_votes],
        [status, runs, run_name],
        api_name="train",
        concurrency_limit=None,
    )
    cancel.click(make_cancel_fn(ctx), [runs, token], [status], api_name="cancel_training", concurrency_limit=None)
    resume.click(make_resume_fn(ctx), [runs, token], [status], api_name="resume_training", concurrency_limit=None)
    send.click(make_send_fn(ctx), [runs, token], [status], api_name="send_to_arena")

    seen = gr.State(None)  # what the chart shows, so an unchanged log is not redrawn every tick

    def refresh(run: str | None, shown: list | None, token_value: str | None = None, request: gr.Request = None):
        refusal = ctx.admin_refusal(token_value, request)  # runs, losses and logs are the operator's
        if refusal is not None:
            locked = ["locked", refusal]
            if shown == locked:
                return gr.skip(), gr.skip(), gr.skip(), shown
            empty = _figure({"train": [], "val": []}, "")
            return gr.update(choices=[], value=None), empty, html.escape(refusal, quote=False), locked
        names = run_names(ctx)
        # A chosen run is never replaced here: a tick that left before Start answered still carries the old
        # choice, and a run that was just started may not be on disk yet. Only an empty choice is filled.
        choice = gr.update(choices=names)
        if not run:
            run = names[0] if names else None
            choice = gr.update(choices=names, value=run)
        if run is None:
            return choice, _figure({"train": [], "val": []}, ""), "No runs yet.", None
        try:  # the choice can be any text (a custom value, a direct call): the run name is checked first
            state = jobs.run_status(ctx.settings, run)
        except WorkbenchError as exc:
            return choice, _figure({"train": [], "val": []}, ""), html.escape(str(exc), quote=False), None
        run = state.run
        log = ctx.settings.adapters_dir / run / "train_log.jsonl"
        signature = [run, log.stat().st_size if log.is_file() else 0, state.status, names]
        if signature == shown:
            return gr.skip(), gr.skip(), gr.skip(), shown
        curves = jobs.loss_curves(ctx.settings, run)
        return choice, _figure(curves, run), _progress_text(state), signature

    def refresh_all(run: str | None, shown: list | None, token_value: str | None = None, request: gr.Request = None):
        out = refresh(run, shown, token_value, request)
        return (*out, _rewards(ctx, out))

    refresh_args = {
        "fn": refresh_all,
        "inputs": [runs, seen, token],
        "outputs": [runs, plot, progress, seen, rewards],
        "api_visibility": "private",
        "show_progress": "hidden",
        # In the queue (and under its limits) in a lane of its own; a tick is cheap: it reads file states and
        # parses only log lines appended since the last tick (runlog.read_log).
        "concurrency_id": "finetune-refresh",
        "concurrency_limit": 2,
    }
    gr.Timer(REFRESH_S).tick(**refresh_args)
    runs.input(**refresh_args)

    def load(run, shown, token_value, *checked, request: gr.Request = None):
        return (*refresh_all(run, shown, token_value, request), *check(*checked, request=request), suggest_name())

    on_load = {
        "fn": load,
        "inputs": refresh_args["inputs"] + check_args["inputs"],
        "outputs": refresh_args["outputs"] + check_args["outputs"] + [run_name],
        "api_visibility": "private",
    }
    return SimpleNamespace(
        upload=upload,
        dataset=dataset,
        report=report,
        start=start,
        cancel=cancel,
        runs=runs,
        plot=plot,
        progress=progress,
        status=status,
        on_load=on_load,
    )
