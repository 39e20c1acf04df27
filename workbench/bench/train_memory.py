"""Benchmark case `train_memory`: `workbench train` against a plain TRL + peft script, SFT and DPO, in one run.

    python -m workbench bench --case train_memory              # 20 steps per side (four runs, heavy: minutes)
    python -m workbench bench --case train_memory --steps 4    # a quick look

Each side runs in a fresh process on the same converted model, the same data and the same settings (LoRA r 8 on
all linear layers, batch 4 x 512 tokens, packing for SFT, seed 42, AdamW at 2e-4, linear schedule, 5% warmup),
with the same validation set (the data's first VAL_ROWS rows) evaluated at the start and the end, and one save
at the end:
- workbench: `run_job` exactly as `workbench train` runs it with a validation file (no store), in a process that
  re-executed itself with jemalloc preloaded (where installed) and switched PyTorch's huge pages on before loading
  torch, as `workbench train` does (`allocator.use_jemalloc`, `allocator.use_huge_pages`).
- plain TRL: SFTTrainer / DPOTrainer + peft's LoraConfig with TRL's defaults. The SFT side is handed the same
  token ids and assistant-only labels Workbench makes (TRL's own assistant-only loss needs `{% generation %}`
  markers that SmolLM2's template lacks), so both train the same objective and their loss curves compare.
  The DPO side gets the pairs in TRL's conversational form and applies the chat template itself.
The two sides of a method run at the same time (the machine is shared; see `_run_sides`). The DPO pairs are made
from the same conversations: each one's last reply is chosen, the next conversation's last reply rejected.
Measured per side: the process's peak RSS (`ru_maxrss`), on a GPU the peak allocated memory, tokens trained per
second of step time and per CPU-second of the steps (eval and saving excluded), the loss per step (compared over
the first LOSS_STEPS steps), and each phase's peak RSS and seconds (`phases.PhaseMeter`: load, data, forward,
reference, loss, backward, optimizer, eval, save). Targets (issue 31): peak memory at most 0.5x plain TRL's,
tokens/s at least 1.0x, losses the same within noise.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from workbench.bench import BenchContext, Measure
from workbench.config import REPO_ROOT, Settings

DATA = REPO_ROOT / "data" / "fastchat_identity" / "train.jsonl"
STEPS = 20
VAL_ROWS = 8  # the validation set both sides evaluate at the start and the end (the eval phase of the profile)
STEP_PHASES = ("forward", "reference", "loss", "backward", "optimizer", "eval", "save")
LOSS_STEPS = 20  # the loss curves are compared over the first steps (issue 31: the same within noise)
# The settings both sides share (Workbench's defaults where it has them).
SHARED = dict(batch=4, max_length=512, lr=2e-4, warmup=0.05, seed=42, r=8, alpha=16, dropout=0.05)
GIB = 1024**3


def _lora():
    from peft import LoraConfig

    return LoraConfig(
        r=SHARED["r"],
        lora_alpha=SHARED["alpha"],
        lora_dropout=SHARED["dropout"],
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def _trainer_args(out: str, steps: int) -> dict[str, Any]:
    import torch

    # Evaluation at the start and the end and one save at the end, as `workbench train` does with a validation
    # file: the profile meters the eval and save phases on both sides.
    return dict(
        eval_strategy="steps",
        eval_steps=steps,
        eval_on_start=True,
        output_dir=out,
        per_device_train_batch_size=SHARED["batch"],
        learning_rate=SHARED["lr"],
        warmup_steps=SHARED["warmup"],
        lr_scheduler_type="linear",
        max_steps=steps,
        logging_steps=1,
        save_strategy="steps",
        save_steps=steps,
        seed=SHARED["seed"],
        data_seed=SHARED["seed"],
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        dataloader_num_workers=0,
    )


def dpo_pairs(conversations: Path, out: Path) -> Path:
    """A preference file from a chat file: each conversation's last reply chosen, the next one's rejected."""
    rows = [json.loads(line) for line in conversations.read_text(encoding="utf-8").splitlines() if line.strip()]
    with out.open("w", encoding="utf-8") as f:
        for i, row in enumerate(rows):
            other = rows[(i + 1) % len(rows)]["messages"][-1]["content"]
            chosen = row["messages"][-1]["content"]
            if other != chosen:
                f.write(json.dumps({"prompt": row["messages"][:-1], "chosen": chosen, "rejected": other}) + "\n")
    return out


def head_rows(source: Path, out: Path, rows: int = VAL_ROWS) -> Path:
    """The first `rows` lines of a JSON-lines file (the validation set both sides evaluate)."""
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    out.write_text("".join(line + "\n" for line in lines[:rows]), encoding="utf-8")
    return out


def _result(meter, callback, losses: list[float]) -> dict[str, Any]:
    meter.stop()
    return {
        "max_rss": meter.max_rss(),
        "phases": meter.peaks,
        "phase_seconds": meter.seconds,
        "phase_cpu_seconds": meter.cpu_seconds,
        "phase_faults": meter.faults,
        "gpu_phases": meter.gpu_peaks,
        "tokens": callback.tokens,
        "seconds": callback.step_seconds,
        "cpu_seconds": callback.step_cpu_seconds,
        "losses": losses,
    }


def _workbench_side(settings: Settings, method: str, steps: int, data: str, val: str, out: str) -> dict[str, Any]:
    import dataclasses

    from workbench.bench.phases import PhaseCallback, PhaseMeter
    from workbench.training.config import JobConfig, RunPaths
    from workbench.training.runlog import read_log
    from workbench.training.trainer import run_job

    meter = PhaseMeter()
    meter.phase("setup (data, load)")
    callback = PhaseCallback(meter)
    settings = dataclasses.replace(settings, adapters_dir=Path(out))
    config = JobConfig(
        run=f"bench-{method}",
        data=data,
        method=method,
        max_steps=steps,
        val_fraction=0,
        val_data=val,
        packing="on",
        eval_steps=steps,
        save_steps=steps,
        seed=SHARED["seed"],
    )
    run_job(config, settings, progress=False, echo=lambda *_: None, store=False, callbacks=[callback])
    records = read_log(RunPaths.of(settings, config.run).log_file)
    result = _result(meter, callback, [r["train_loss"] for r in records if r["event"] == "log"])
    return {**result, "estimate": _estimate(settings, config)}


def _estimate(settings: Settings, config) -> int:
    from workbench.generation.loading import choose_device
    from workbench.registry import resolve_base
    from workbench.training.memory import estimate, model_shape, planned_head

    device = choose_device(settings)
    return estimate(model_shape(resolve_base(settings), settings), config, device, planned_head(device)).total


def _trl_side(settings: Settings, method: str, steps: int, data: str, val: str, out: str) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM

    from workbench.bench.phases import PhaseCallback, PhaseMeter
    from workbench.generation.loading import load_tokenizer, model_source
    from workbench.registry import resolve_base

    meter = PhaseMeter()
    meter.phase("load")
    base = resolve_base(settings)
    tokenizer = load_tokenizer(base, settings)
    source, local, _ = model_source(base, settings)
    model = AutoModelForCausalLM.from_pretrained(source, local_files_only=local, dtype="float32")
    meter.phase("data")
    callback = PhaseCallback(meter)
    common = _trainer_args(out, steps)
    if method == "dpo":
        from datasets import Dataset
        from trl import DPOConfig, DPOTrainer

        def conversational(path: str) -> Any:
            rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
            for row in rows:
                row["chosen"] = [{"role": "assistant", "content": row["chosen"]}]
                row["rejected"] = [{"role": "assistant", "content": row["rejected"]}]
            return Dataset.from_list(rows)

        args = DPOConfig(**common, max_length=SHARED["max_length"], beta=0.1)
        trainer = DPOTrainer(
            model=model,
            args=args,
            train_dataset=conversational(data),
            eval_dataset=conversational(val),
            processing_class=tokenizer,
            peft_config=_lora(),
            callbacks=[callback],
        )
    else:
        from trl import SFTConfig, SFTTrainer

        from workbench.training.data import read_dataset
        from workbench.training.tokenize import encode_examples

        def encoded(path: str) -> Any:
            return encode_examples(tokenizer, read_dataset(path, tokenizer, SHARED["max_length"]).examples)

        args = SFTConfig(**common, max_length=SHARED["max_length"], packing=True)
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=encoded(data),
            eval_dataset=encoded(val),
            processing_class=tokenizer,
            peft_config=_lora(),
            callbacks=[callback],
        )
    trainer.train()
    return _result(meter, callback, [e["loss"] for e in trainer.state.log_history if "loss" in e])


SIDES = {"workbench": _workbench_side, "plain TRL": _trl_side}


def _run_sides(settings: Settings, method: str, steps: int, data: Path, val: Path) -> dict[str, dict[str, Any]]:
    """Both sides of `method` at the same time, each in a fresh interpreter (subprocesses: the case itself runs in a
    pool's daemon process). Together, because the machine is shared: load that comes and goes during the run then
    slows both sides alike, where sides in turn met different loads (their tokens/s ratio moved by 0.3 between
    runs)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, **settings.to_env()}
    with tempfile.TemporaryDirectory() as tmp:
        running = {}
        for i, side in enumerate(SIDES):
            out = Path(tmp) / str(i)
            out.mkdir()
            cmd = [sys.executable, "-m", "workbench.bench.train_memory", side, method, str(steps)]
            cmd += [str(data), str(val), str(out), str(out / "result.json")]
            running[side] = (subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL), out / "result.json")
        for side, (process, _) in running.items():
            if process.wait() != 0:
                raise RuntimeError(f"The {side} side of {method} failed (exit code {process.returncode}).")
        return {side: json.loads(result.read_text(encoding="utf-8")) for side, (_, result) in running.items()}


def _measures(method: str, ours: dict[str, Any], plain: dict[str, Any], steps: int) -> list[Measure]:
    case, anchor = "train_memory", f"plain TRL {method}"
    out = [
        Measure.against(
            case,
            f"{method}: peak RSS",
            ours["max_rss"] / GIB,
            "GiB",
            anchor,
            plain["max_rss"] / GIB,
            "target <= 0.5x",
        ),
        Measure.against(
            case,
            f"{method}: tokens/s",
            ours["tokens"] / ours["seconds"],
            "tok/s",
            anchor,
            plain["tokens"] / plain["seconds"],
            "target >= 1.0x; step time only",
        ),
        Measure.against(
            case,
            f"{method}: tokens per CPU-second",
            ours["tokens"] / ours["cpu_seconds"],
            "tok/CPU-s",
            anchor,
            plain["tokens"] / plain["cpu_seconds"],
            "the steps' CPU time (all threads): what the work costs, less moved by other work than wall time",
        ),
    ]
    out += _loss_agreement(method, ours["losses"], plain["losses"])
    out.append(
        Measure.against(
            case,
            f"{method}: the estimate `train --validate-only` shows",
            ours["estimate"] / GIB,
            "GiB",
            "workbench's measured peak RSS",
            ours["max_rss"] / GIB,
            "an upper bound: it assumes every row is max-length",
        )
    )
    for phase, peak in ours["gpu_phases"].items():
        if plain["gpu_phases"].get(phase):
            out.append(
                Measure.against(
                    case,
                    f"{method}: GPU peak allocated, {phase}",
                    peak / GIB,
                    "GiB",
                    anchor,
                    plain["gpu_phases"][phase] / GIB,
                )
            )
    out += _phase_times(method, ours, plain)
    for phase, peak in ours["phases"].items():
        theirs = plain["phases"].get(phase)
        if theirs:
            out.append(Measure.against(case, f"{method}: peak RSS in {phase}", peak / GIB, "GiB", anchor, theirs / GIB))
        elif phase not in ("start", "end"):
            out.append(Measure(case, f"{method}: peak RSS in {phase}", peak / GIB, "GiB"))
    return out


def _phase_times(method: str, ours: dict[str, Any], plain: dict[str, Any]) -> list[Measure]:
    """Where the time goes, per phase over the whole run: wall seconds, CPU-seconds (all threads, user + system)
    and page faults (what the allocator's choices cost: each fresh 4 KiB page, or 2 MB huge page, is one)."""
    case, anchor, out = "train_memory", f"plain TRL {method}", []
    for key, what, unit in (
        ("phase_seconds", "seconds", "s"),
        ("phase_cpu_seconds", "CPU-seconds", "CPU-s"),
        ("phase_faults", "page faults", "faults"),
    ):
        for phase, value in ours[key].items():
            if phase in STEP_PHASES:
                theirs, name = plain[key].get(phase), f"{method}: {what} in {phase}"
                out.append(
                    Measure.against(case, name, value, unit, anchor, theirs)
                    if theirs
                    else Measure(case, name, value, unit)
                )
    return out


def _loss_agreement(method: str, ours: list[float], plain: list[float]) -> list[Measure]:
    """How closely the two loss curves agree over the first LOSS_STEPS steps (same seed, same data order)."""
    pairs = list(zip(ours, plain, strict=False))[:LOSS_STEPS]
    if not pairs:
        return []
    gaps = [abs(a - b) for a, b in pairs]
    curves = " / ".join(f"{a:.3f} vs {b:.3f}" for a, b in pairs)
    return [
        Measure("train_memory", f"{method}: loss, largest step difference", max(gaps), "nats", note=curves),
        Measure(
            "train_memory",
            f"{method}: loss, mean step difference",
            sum(gaps) / len(gaps),
            "nats",
            note=f"over the first {len(pairs)} steps, workbench vs plain TRL",
        ),
    ]


def case_train_memory(ctx: BenchContext) -> list[Measure]:
    """`workbench train` against plain TRL + peft, SFT then DPO; the two sides of a method run at the same time,
    each in its own process."""
    steps = ctx.steps or STEPS
    measures: list[Measure] = []
    with tempfile.TemporaryDirectory() as tmp:
        for method, data in (("sft", DATA), ("dpo", dpo_pairs(DATA, Path(tmp) / "pairs.jsonl"))):
            val = head_rows(data, Path(tmp) / f"{method}-val.jsonl")
            sides = _run_sides(ctx.settings, method, steps, data, val)
            measures += _measures(method, sides["workbench"], sides["plain TRL"], steps)
    return measures


if __name__ == "__main__":  # one side: SIDE METHOD STEPS DATA VAL OUT RESULT (what `_run_sides` starts)
    import sys

    side, method, steps, data, val, out, result = sys.argv[1:]
    settings = Settings.from_env()
    if side == "workbench":  # what `workbench train` does first, before torch loads (training/allocator.py)
        from workbench.training.allocator import use_huge_pages, use_jemalloc

        use_jemalloc(settings.train_allocator)  # re-executes this side once, with jemalloc preloaded
        use_huge_pages()
    figures = SIDES[side](settings, method, int(steps), data, val, out)
    Path(result).write_text(json.dumps(figures), encoding="utf-8")
