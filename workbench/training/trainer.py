"""Run a LoRA fine-tuning job: peft's LoraConfig + TRL's SFTTrainer, with Workbench's checkpoints and logs.

    summary = run_job(JobConfig(run="my-run", data="train.jsonl", max_steps=40), Settings.from_env())

The same code runs in one process on a CPU or a GPU (CUDA + bf16 picked automatically) and under
`accelerate launch` / `torchrun` with several processes (DDP, one model copy per process); only the
main process validates aloud, writes logs and publishes checkpoints. See the package docstring for the
folder layout, and `checkpoints.py` for how kills and resumes are made safe.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import threading
import warnings
from collections.abc import Sequence
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.training.allocator import return_freed_memory
from workbench.training.callbacks import RunCallback, RunContext, losses_at
from workbench.training.checkpoints import (
    check_run_folder,
    checkpoint_step,
    choose_final,
    load_job,
    publish_checkpoint,
    publish_final,
    published_steps,
    read_meta,
    resume_point,
    write_json,
)
from workbench.training.chunked_head import loss_head
from workbench.training.config import JobConfig, RunPaths
from workbench.training.hooks import RunHooks, check_suites
from workbench.training.memory import require_fit
from workbench.training.prepare import PreparedData, job_settings, prepare_data
from workbench.training.procs import identity
from workbench.training.runlog import RunLog, read_log
from workbench.training.tokenize import encode_examples, packing_pays
from workbench.training.tracking import tracking_setup


def _check_same_data(saved: dict[str, Any], current: dict[str, Any], run: str) -> None:
    for part, facts in current["datasets"].items():
        before = saved.get("datasets", {}).get(part, {})
        if before.get("sha256") and facts.get("sha256") and before["sha256"] != facts["sha256"]:
            raise WorkbenchError(
                f"{facts['file']} changed since run {run!r} started (its SHA-256 differs), so resuming would "
                "train on different data; start a new run instead."
            )


def _on_cpu(settings: Settings) -> bool:
    import torch

    return settings.device == "cpu" or (settings.device == "auto" and not torch.cuda.is_available())


def _device_settings(settings: Settings, local_rank: int, world: int) -> Settings:
    import torch

    if settings.device == "auto" and world > 1 and torch.cuda.is_available():
        return dataclasses.replace(settings, device=f"cuda:{local_rank}")  # one GPU per process under DDP
    return settings


def training_args(config: JobConfig, paths: RunPaths, device: str, has_val: bool, resuming: bool) -> dict[str, Any]:
    """The TrainingArguments every method shares (SFTConfig and DPOConfig add their own)."""
    import torch

    cuda = device.startswith("cuda")
    bf16 = cuda and torch.cuda.is_bf16_supported()
    return dict(
        output_dir=str(paths.trainer_dir),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        warmup_steps=config.warmup,
        weight_decay=config.weight_decay,
        lr_scheduler_type=config.scheduler,
        logging_steps=config.logging_steps,
        eval_strategy="steps" if has_val else "no",
        eval_steps=config.eval_steps,
        eval_on_start=has_val and not resuming,  # the "before" validation loss, once per run
        metric_for_best_model="eval_loss" if has_val else None,
        greater_is_better=False,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,  # trainer state only; the published adapters are all kept
        seed=config.seed,
        data_seed=config.seed,
        bf16=bf16,
        fp16=cuda and not bf16,
        use_cpu=device == "cpu",
        activation_checkpointing=config.gradient_checkpointing,  # transformers 5's name for gradient checkpointing
        # Liger's RoPE, SwiGLU and RMSNorm kernels where it is installed on a GPU; TRL keeps its own fused head for
        # the loss (it refuses Liger's fused linear cross-entropy), so the loss is the same either way.
        use_liger_kernel=cuda and importlib.util.find_spec("liger_kernel") is not None,
        report_to=tracking_setup(config, paths),
        run_name=config.run,
        project="workbench",  # Trackio's project
        disable_tqdm=True,
        ddp_find_unused_parameters=False,
        dataloader_num_workers=0,
    )


def _sft_config(config: JobConfig, paths: RunPaths, device: str, packing: bool, has_val: bool, resuming: bool):
    from trl import SFTConfig

    common = training_args(config, paths, device, has_val, resuming)
    return SFTConfig(**common, packing=packing, max_length=config.max_length)


def _load_model(data: PreparedData, settings: Settings):
    from workbench.generation.loading import load_base

    loaded = load_base(data.base, settings)
    loaded.model.config.use_cache = False  # the KV cache is for generation; training only wastes memory on it
    return loaded


def _model_and_lora(config: JobConfig, data: PreparedData, settings: Settings):
    """The model to train and peft's LoraConfig for a new adapter (None when continuing `init_adapter`)."""
    from peft import LoraConfig, PeftModel
    from transformers import set_seed

    loaded = _load_model(data, settings)
    set_seed(config.seed)  # the LoRA matrices are initialised before the Trainer seeds anything itself
    if data.init_adapter is not None:
        model = PeftModel.from_pretrained(loaded.model, str(data.init_adapter.path), is_trainable=True)
        return loaded, model, None
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_targets,
        task_type="CAUSAL_LM",
    )
    return loaded, loaded.model, lora


def _build_trainer(
    config: JobConfig, data: PreparedData, settings: Settings, ctx: RunContext, resuming: bool, extra=()
):
    from transformers import PrinterCallback

    loaded, model, lora = _model_and_lora(config, data, settings)
    callbacks: list[Any] = [RunCallback(ctx), *extra]
    if config.patience:
        from transformers import EarlyStoppingCallback

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.patience))
    if config.method in ("dpo", "kto"):
        from workbench.training.dpo import dpo_trainer
        from workbench.training.kto import kto_trainer

        common = training_args(config, ctx.paths, loaded.device, bool(data.val), resuming)
        build = dpo_trainer if config.method == "dpo" else kto_trainer
        trainer, facts = build(config, data, model, lora, common, callbacks)
    else:
        trainer, facts = _sft_trainer(config, data, model, lora, loaded.device, ctx, resuming, callbacks)
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; the progress bar and the log file suffice
    return trainer, {**facts, "device": loaded.device, "loss_head": loss_head(trainer)}


def _sft_trainer(config, data, model, lora, device, ctx, resuming, callbacks):
    from trl import SFTTrainer

    train_ds = encode_examples(data.tokenizer, data.train)
    val_ds = encode_examples(data.tokenizer, data.val) if data.val else None
    lengths = [len(ids) for ids in train_ds["input_ids"]]
    packing = config.packing == "on" or (config.packing == "auto" and packing_pays(lengths, config.max_length))
    trainer = SFTTrainer(
        model=model,
        args=_sft_config(config, ctx.paths, device, packing, val_ds is not None, resuming),
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=data.tokenizer,
        peft_config=lora,
        callbacks=callbacks,
    )
    return trainer, {"sequences": len(train_ds), "tokens": sum(lengths), "packing": packing}


def _republish_resume_point(ctx: RunContext, folder, max_steps: int | None) -> None:
    """A kill between the trainer's save and our publish leaves the adapter unpublished: publish it now."""
    import json

    step = checkpoint_step(folder)
    if ctx.paths.checkpoint(step).exists():
        return
    state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    meta = ctx.checkpoint_meta(step, max_steps or state.get("max_steps"), state.get("epoch"), state["log_history"])
    publish_checkpoint(ctx.paths, step, folder, ctx.base_name, meta, ctx.chat_template)


def _wall_offset(log_file, step: int) -> float:
    times = [r.get("elapsed_s") or 0 for r in read_log(log_file) if r.get("step", 0) <= step]
    return max(times, default=0.0)


def _finish(config: JobConfig, ctx: RunContext, trainer, status: str) -> dict[str, Any]:
    paths, state = ctx.paths, trainer.state
    final = None
    if status != "cancelled":
        chosen = choose_final(paths, use_val_loss=config.has_validation)
        if chosen is not None:
            publish_final(paths, chosen, {**read_meta(chosen), "final": True, "source_checkpoint": chosen.name})
            final = chosen.name
    records = read_log(paths.log_file)
    evals = [r for r in records if r["event"] == "eval" and r.get("val_loss") is not None]
    rates = [r["tokens_per_s"] for r in records if r["event"] == "log" and r.get("tokens_per_s")]
    train_loss, val_loss = losses_at(state.log_history, state.global_step)
    best = read_meta(paths.checkpoint(checkpoint_step(final))) if final else {}
    return {
        "run": paths.run,
        "status": status,
        "base_model": ctx.base_name,
        "step": state.global_step,
        "max_steps": state.max_steps,
        "adapter": paths.run if final else None,
        "adapter_path": str(paths.run_dir),
        "final_checkpoint": f"{paths.run}/{final}" if final else None,
        "checkpoints": [f"{paths.run}/checkpoint-{s}" for s in published_steps(paths)],
        "train_loss": train_loss,
        "val_loss_start": evals[0]["val_loss"] if evals and evals[0]["step"] == 0 else None,
        "val_loss_end": val_loss,
        "val_loss_best": best.get("val_loss"),
        "tokens_per_s": round(sum(rates) / len(rates), 1) if rates else None,
        "wall_time_s": round(ctx.elapsed(), 1),
        "examples": ctx.meta["examples"],
        "datasets": ctx.meta["datasets"],
    }


def run_job(
    config: JobConfig,
    settings: Settings,
    *,
    resume: bool = False,
    progress: bool = True,
    echo=print,
    cancel: threading.Event | None = None,
    store: bool = True,
    callbacks: Sequence[Any] = (),
) -> dict[str, Any] | None:
    """Validate, train and publish a LoRA adapter; returns the run summary (also the log's "end" event).

    In a distributed run only the main process returns the summary; the others return None.

    Args:
        config: The job (on resume: the saved one, from `load_job`).
        settings: Where models and adapters live; the job's base model overrides the default one.
        resume: Continue the run `config.run` from its last complete checkpoint.
        progress: Draw a tqdm progress bar on stderr.
        echo: Where the validation report is printed (main process only).
        cancel: Set it to stop after the current step; the run ends "cancelled" and can be resumed.
        store: Also write training logs and checkpoints to the store (`settings.db_url`).
        callbacks: More Trainer callbacks (the benchmark's memory meter).

    Raises:
        WorkbenchError: Bad data, an existing run (without resume), a missing run (with resume), changed data.
    """
    import datasets
    from accelerate import PartialState

    datasets.disable_progress_bars()  # the run has its own progress bar
    # TRL still asks the model the old name of this attribute; the warning is for TRL's authors, not our users.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    # Joins the process group that accelerate launch / torchrun set up, if any; on a CPU accelerate only
    # forms one (gloo) when told the run is on the CPU.
    dist = PartialState(cpu=_on_cpu(settings))
    main = dist.is_main_process
    settings = _device_settings(job_settings(config, settings), dist.local_process_index, dist.num_processes)
    paths = RunPaths.of(settings, config.run)
    check_run_folder(paths, resume)
    check_suites(config.eval_suites)
    with dist.main_process_first():  # the first start converts the embedded GGUF once
        data = prepare_data(config, settings, echo=echo if main else None)
    fit = require_fit(config, settings, data.base)  # before any weight loads: a run that cannot fit is refused
    return_freed_memory()
    if main:
        echo("\n".join(filter(None, [data.summary(), fit])))
    job = {"config": config.to_dict(), "base_model": data.base.name, "datasets": data.datasets_meta(config)}
    if resume:
        _check_same_data(load_job(paths), job, config.run)
    dist.wait_for_everyone()  # nobody creates the run folder before every process has checked it
    if main and not resume:
        paths.trainer_dir.mkdir(parents=True, exist_ok=True)
        write_json(paths.job_file, job)
    log = RunLog(paths.log_file, enabled=main)
    hooks = RunHooks(settings, config, log, use_store=store and main)
    try:
        return _train(config, settings, data, job, paths, log, dist, resume, progress, cancel, hooks, callbacks)
    except BaseException as exc:
        status = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
        log.write("end", status=status, error=str(exc) or type(exc).__name__)
        raise
    finally:
        hooks.close()


def _train(config, settings, data, job, paths, log, dist, resume, progress, cancel, hooks, extra=()):
    main = dist.is_main_process
    with dist.main_process_first():  # main removes torn checkpoints first, then everyone agrees on the same one
        folder = resume_point(paths) if resume else None
    if resume and folder is None and published_steps(paths):
        raise WorkbenchError(f"Run {config.run!r} has no complete trainer checkpoint left to resume from.")
    step = checkpoint_step(folder) if folder else 0
    if main and resume:
        log.rewind(step if folder else -1)  # no checkpoint: the run starts over, its old steps go
    ctx = RunContext(
        paths=paths,
        base_name=data.base.name,
        meta={
            "run": config.run,
            "base_model": data.base.name,
            "datasets": job["datasets"],
            "hyperparameters": job["config"],
            "method": config.method,
            "init_adapter": config.init_adapter,
            "votes": config.votes,
            "likes": config.likes,
            # What the chat template of the adapters is: the model's own, or the one this run declared.
            "chat_template": "own" if data.declared_template is None else f"declared ({config.chat_template})",
        },
        chat_template=data.declared_template,
        log=log,
        wall_offset=_wall_offset(paths.log_file, step) if resume else 0.0,
        cancel=cancel or threading.Event(),
        on_checkpoint=hooks.on_checkpoint if dist.is_main_process else None,
        on_log=hooks.on_log if dist.is_main_process else None,
        progress=progress and main,
    )
    log.write(
        "prepare",
        **identity(),  # pid and its start time: a reused pid is never taken for this run (procs.py)
        resumed_from=step or None,
        train=data.train_report.to_dict(),
        validation=data.val_report.to_dict() if data.val_report else None,
        summary=data.summary(),
    )
    trainer, facts = _build_trainer(config, data, settings, ctx, folder is not None, extra)
    ctx.meta["examples"] = {
        "train": len(data.train),
        "validation": len(data.val),
        "train_sequences": facts["sequences"],
        "train_tokens": facts["tokens"],
    }
    if main and folder is not None:
        _republish_resume_point(ctx, folder, None)
    ctx.start_info = {
        **identity(),
        "resumed_from": step or None,
        "packing": facts["packing"],
        "device": facts["device"],
        "loss_head": facts["loss_head"],
        "examples": ctx.meta["examples"],
        "world_size": dist.num_processes,
    }
    if not ctx.cancel.is_set():
        trainer.train(resume_from_checkpoint=str(folder) if folder else None)
    state = trainer.state
    if ctx.cancel.is_set():
        status = "cancelled"
    else:
        status = "finished" if state.global_step >= state.max_steps else "stopped-early"
    dist.wait_for_everyone()
    if not main:
        return None
    summary = _finish(config, ctx, trainer, status)
    if status != "cancelled":
        # Optimizer and RNG state only serve a resume; an ended run keeps its adapters and job.json.
        for folder in paths.trainer_dir.glob("checkpoint-*"):
            shutil.rmtree(folder, ignore_errors=True)
    log.write("end", **summary)
    return summary
