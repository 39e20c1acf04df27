"""LoRA fine-tuning: job config checks, assistant-only labels, a real training run of the embedded model whose
adapter the chat engine loads, resume after kill -9, atomic checkpoints, early stopping, the final adapter.

Run: .venv/bin/python -m pytest -q tests/training/test_finetune.py
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.finetune import ROOT, identity_file
from workbench.errors import WorkbenchError
from workbench.evaluation.fingerprints import file_sha256
from workbench.generation.settings import GenerationSettings
from workbench.registry import inspect_adapter, list_adapters
from workbench.training import JobConfig, RunPaths, run_job
from workbench.training.checkpoints import choose_final, publish_checkpoint, resume_point, write_json
from workbench.training.data import read_dataset
from workbench.training.runlog import read_log
from workbench.training.tokenize import IGNORE, encode_conversation


@pytest.fixture(scope="module")
def tokenizer(embedded_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_dir, local_files_only=True)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"run": "base"}, "run name 'base' is not usable"),
        ({"run": "../escape"}, "is not usable"),
        ({"learning_rate": 0}, "Learning rate must be more than 0"),
        ({"batch_size": 2.5}, "Batch size must be a whole number"),
        ({"lora_dropout": 1.0}, "LoRA dropout must be below 1"),
        ({"val_fraction": 0.9}, "at most 0.5"),
        ({"packing": "maybe"}, "Packing must be one of auto, on, off"),
        ({"target_modules": ("all-linear", "q_proj")}, "cannot be combined"),
        ({"target_modules": ("q proj",)}, "Target modules must be module names"),
        ({"patience": 2, "val_fraction": 0}, "Early stopping needs validation data"),
        ({"warmup": 2.5}, "whole number of steps or a fraction below 1"),
        ({"max_steps": 0, "epochs": 0}, "Epochs must be more than 0"),
    ],
)
def test_job_config_checks_itself(change, expected):
    with pytest.raises(WorkbenchError, match=expected):
        JobConfig(**({"run": "ok", "data": "train.jsonl"} | change))


def test_job_config_round_trips_through_json():
    config = JobConfig(run="r", data="x.jsonl", target_modules=["q_proj", "v_proj"], eval_suites=["s"])
    assert config.lora_targets == ["q_proj", "v_proj"] and Path(config.data).is_absolute()
    assert JobConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(WorkbenchError, match="Unknown training settings: bogus"):
        JobConfig.from_dict(config.to_dict() | {"bogus": 1})


def test_labels_cover_every_assistant_turn_and_nothing_else(tokenizer):
    messages = [
        {"role": "user", "content": "What is up?"},
        {"role": "assistant", "content": "Hello! How can I help you today?"},
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": "I am Vicuna."},
    ]
    (seq,) = encode_conversation(tokenizer, messages)
    trained = tokenizer.decode([t for t, label in zip(seq["input_ids"], seq["labels"], strict=True) if label != IGNORE])
    assert trained == "Hello! How can I help you today?<|im_end|>\nI am Vicuna.<|im_end|>\n"
    assert seq["input_ids"] == tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    assert all(label in (IGNORE, tok) for tok, label in zip(seq["input_ids"], seq["labels"], strict=True))


def test_a_template_that_rewrites_history_gets_one_sequence_per_assistant_turn(tokenizer):
    # This template marks the last message, so a prefix renders differently once more turns follow.
    template = "{% for m in messages %}{{ m.role }}: {{ m.content }}{% if loop.last %} [last]{% endif %}\n{% endfor %}"
    tok = tokenizer.__class__.from_pretrained(tokenizer.name_or_path, local_files_only=True)
    tok.chat_template = template
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
    ]
    first, second = (
        tok.decode([t for t, x in zip(seq["input_ids"], seq["labels"], strict=True) if x != IGNORE])
        for seq in encode_conversation(tok, messages)
    )
    assert "b" in first and "d" not in first and "d" in second and "b" not in second


@pytest.mark.slow
def test_real_training_gives_an_adapter_the_chat_engine_uses(engine, wb_settings, embedded_dir, tmp_path):
    """A few steps of the embedded model on real data: checkpoints, metadata, logs, store, and a changed reply."""
    train = identity_file(tmp_path / "identity.jsonl", 24)
    val = identity_file(tmp_path / "identity_val.jsonl", 4, skip=24)
    config = JobConfig(
        run="finetune-real",
        data=str(train),
        val_data=str(val),
        max_steps=4,
        batch_size=4,
        learning_rate=3e-3,
        max_length=128,
        save_steps=2,
        eval_steps=2,
        warmup=0,
    )
    summary = run_job(config, wb_settings, progress=False, echo=lambda _: None)
    assert summary["status"] == "finished" and summary["step"] == 4
    assert summary["checkpoints"] == ["finetune-real/checkpoint-2", "finetune-real/checkpoint-4"]
    assert summary["val_loss_best"] < summary["val_loss_start"]

    meta = json.loads((wb_settings.adapters_dir / "finetune-real" / "checkpoint-4" / "workbench.json").read_text())
    assert meta["base_model"] == engine.base.name and meta["step"] == 4
    assert (
        meta["datasets"]["train"]["sha256"] == file_sha256(train)
        and meta["datasets"]["train"]["file"] == "identity.jsonl"
    )
    assert meta["datasets"]["validation"]["sha256"] == file_sha256(val)
    assert meta["examples"]["train"] == 24 and meta["examples"]["validation"] == 4
    assert meta["hyperparameters"]["learning_rate"] == 3e-3 and meta["hyperparameters"]["lora_r"] == 8
    assert meta["train_loss"] > 0 and meta["val_loss"] > 0 and meta["wall_time_s"] > 0

    names = {a.name: a for a in list_adapters(wb_settings, engine.base)}
    assert (
        names["finetune-real"].usable
        and names["finetune-real/checkpoint-2"].usable
        and names["finetune-real/checkpoint-4"].usable
    )
    assert names["finetune-real"].base_model == engine.base.name
    assert {"finetune-real", "finetune-real/checkpoint-4"} <= set(engine.checkpoints())

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    plain = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(embedded_dir), str(names["finetune-real"].path)
    )
    assert sum(p.numel() for n, p in plain.named_parameters() if "lora_" in n) > 0

    greedy = GenerationSettings(temperature=0, max_new_tokens=16)
    question = [{"role": "user", "content": "Who are you?"}]
    before, _ = engine.generate(question, greedy)
    after, stats = engine.generate(question, greedy, adapter="finetune-real")
    assert stats.adapter == "finetune-real" and after != before

    # What the adapter changed (issue 30's token view) on this trained adapter: the held-out identity replies, read
    # under the base and the adapter, are likelier under the adapter (as the validation loss said), and the tokens
    # that moved most (seen at least twice) are mostly ones the adapter made likelier.
    from workbench.generation.tokenshift import token_shift
    from workbench.studio.tokenshift import moved_most

    readings = []
    for line in val.read_text(encoding="utf-8").splitlines():
        messages = json.loads(line)["messages"]
        readings.append(token_shift(engine, messages[:1], messages[1]["content"], "base", "finetune-real"))
    shifts = [row["shift"] for reading in readings for row in reading]
    assert sum(shifts) / len(shifts) > 0
    table = moved_most(readings, top=5, min_count=2)
    assert len(table) == 5 and (table["mean_shift"] > 0).sum() > (table["mean_shift"] < 0).sum()

    records = read_log(wb_settings.adapters_dir / "finetune-real" / "train_log.jsonl")
    logs = [r for r in records if r["event"] == "log"]
    assert [r["step"] for r in logs] == [1, 2, 3, 4]
    assert all(r["train_loss"] > 0 and r["learning_rate"] is not None and r["tokens_per_s"] > 0 for r in logs)
    assert [r["step"] for r in records if r["event"] == "eval"] == [0, 2, 4]
    assert records[-1]["event"] == "end" and records[-1]["status"] == "finished"

    from workbench.store import Store

    with Store.open(wb_settings) as db:
        rows = db.training_logs("finetune-real")
    assert sorted(rows["step"]) == [0, 1, 2, 3, 4]
    assert rows.set_index("step").loc[4, "val_loss"] == pytest.approx(meta["val_loss"])


def _train_cmd(name: str, data: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "workbench",
        "train",
        "--data",
        str(data),
        "--name",
        name,
        "--max-length",
        "128",
        "--batch-size",
        "2",
        "--save-steps",
        "2",
        "--eval-steps",
        "4",
        "--val-fraction",
        "0.1",
        *extra,
    ]


@pytest.mark.slow
def test_resume_after_kill_9_ends_where_an_uninterrupted_run_ends(tiny_settings, tiny_env, tmp_path):
    data = identity_file(tmp_path / "d.jsonl", 60)
    steps = ["--max-steps", "6"]
    whole = subprocess.run(
        _train_cmd("whole", data, *steps, "--json", "--quiet"),
        cwd=ROOT,
        env=tiny_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert whole.returncode == 0, whole.stderr
    expected = json.loads(whole.stdout)

    paths = RunPaths.of(tiny_settings, "killed")
    proc = subprocess.Popen(
        _train_cmd("killed", data, *steps, "--quiet"),
        cwd=ROOT,
        env=tiny_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while not paths.checkpoint(2).is_dir() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    for folder in paths.run_dir.glob("checkpoint-*"):  # whatever is visible is complete
        assert inspect_adapter(folder, folder.name).usable, folder
    assert not (paths.run_dir / "adapter_model.safetensors").exists()

    resume = [sys.executable, "-m", "workbench", "train", "--name", "killed", "--resume", "--json"]
    resumed = subprocess.run(resume, cwd=ROOT, env=tiny_env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["status"] == "finished"
    assert (summary["step"], summary["max_steps"]) == (expected["step"], expected["max_steps"]) == (6, 6)
    assert [c.split("/")[1] for c in summary["checkpoints"]] == [c.split("/")[1] for c in expected["checkpoints"]]
    assert "6/6" in resumed.stderr  # the progress bar went on from the checkpoint to the end
    records = read_log(paths.log_file)
    steps_logged = [r["step"] for r in records if r["event"] == "log"]
    assert steps_logged == sorted(set(steps_logged)) == [1, 2, 3, 4, 5, 6]  # rewound, no step twice
    assert [r.get("resumed_from") for r in records if r["event"] == "start"][-1] >= 2
    assert summary["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-3)  # same data order and RNG


def test_resume_refuses_changed_data_and_unknown_runs(tiny_settings, tmp_path):
    data = identity_file(tmp_path / "d.jsonl", 20)
    config = JobConfig(run="once", data=str(data), max_steps=2, max_length=128, batch_size=2, save_steps=2)
    run_job(config, tiny_settings, progress=False, echo=lambda _: None, store=False)
    with pytest.raises(WorkbenchError, match="already exists"):
        run_job(config, tiny_settings, progress=False, echo=lambda _: None, store=False)
    with pytest.raises(WorkbenchError, match=r"Run 'once' already ended \(finished at step 2\)"):
        run_job(config, tiny_settings, resume=True, progress=False, echo=lambda _: None, store=False)
    assert not list(RunPaths.of(tiny_settings, "once").trainer_dir.glob("checkpoint-*"))  # no resume state kept
    log = RunPaths.of(tiny_settings, "once").log_file
    log.write_text(log.read_text().rsplit("\n", 2)[0] + "\n")  # as if killed before the end: resumable again
    identity_file(data, 20, skip=1)
    with pytest.raises(WorkbenchError, match="changed since run 'once' started"):
        run_job(config, tiny_settings, resume=True, progress=False, echo=lambda _: None, store=False)
    with pytest.raises(WorkbenchError, match="There is no run called 'nope'"):
        run_job(JobConfig(run="nope", data=str(data)), tiny_settings, resume=True, progress=False, store=False)


def test_a_checkpoint_is_complete_or_invisible(tiny_settings, tmp_path, monkeypatch):
    """A crash while publishing leaves only a hidden folder; a torn trainer checkpoint is never resumed from."""
    import shutil

    from workbench.training import checkpoints

    data = identity_file(tmp_path / "d.jsonl", 20)
    config = JobConfig(
        run="atomic", data=str(data), max_steps=4, max_length=128, batch_size=2, save_steps=2, val_fraction=0
    )
    run_job(config, tiny_settings, progress=False, echo=lambda _: None, store=False)
    paths = RunPaths.of(tiny_settings, "atomic")
    for step in (2, 4):  # trainer checkpoints as a kill would leave them (an ended run deletes its own)
        shutil.copytree(paths.checkpoint(step), paths.trainer_checkpoint(step))
        (paths.trainer_checkpoint(step) / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    source = paths.trainer_checkpoint(4)

    real_copy = shutil.copyfile

    def crash(src, dst):  # the process dies after the weights, before config and metadata
        real_copy(src, dst)
        raise KeyboardInterrupt

    shutil.rmtree(paths.checkpoint(4))
    monkeypatch.setattr(checkpoints.shutil, "copyfile", crash)
    with pytest.raises(KeyboardInterrupt):
        publish_checkpoint(paths, 4, source, "tiny", {"step": 4})
    monkeypatch.undo()
    assert (paths.run_dir / ".checkpoint-4.tmp").is_dir() and not paths.checkpoint(4).exists()
    assert [a.name for a in list_adapters(tiny_settings)] == ["atomic", "atomic/checkpoint-2"]

    (source / "trainer_state.json").write_text('{"global_step": 4, "log_hi')  # torn by a kill mid-write
    assert resume_point(paths) == paths.trainer_checkpoint(2)
    assert not source.exists() and not (paths.run_dir / ".checkpoint-4.tmp").exists()


def test_final_adapter_is_the_checkpoint_with_the_lowest_validation_loss(tmp_path):
    paths = RunPaths(tmp_path / "run")
    for step, loss in ((2, 1.5), (4, 0.9), (6, 1.1)):
        paths.checkpoint(step).mkdir(parents=True)
        write_json(paths.checkpoint(step) / "workbench.json", {"val_loss": loss})
    assert choose_final(paths, use_val_loss=True) == paths.checkpoint(4)
    assert choose_final(paths, use_val_loss=False) == paths.checkpoint(6)


def test_early_stopping_ends_a_run_whose_validation_loss_stops_falling(tiny_settings, tmp_path):
    data = identity_file(tmp_path / "d.jsonl", 30)
    # A learning rate too small to move the loss: no evaluation improves on the first one.
    config = JobConfig(
        run="stops",
        data=str(data),
        max_steps=20,
        learning_rate=1e-12,
        max_length=128,
        batch_size=2,
        eval_steps=2,
        save_steps=2,
        patience=1,
        val_fraction=0.1,
    )
    summary = run_job(config, tiny_settings, progress=False, echo=lambda _: None, store=False)
    assert summary["status"] == "stopped-early"
    assert summary["step"] == 4 and summary["max_steps"] == 20
    assert summary["adapter"] == "stops" and read_dataset(data).kept == 30


def test_suites_run_at_every_save_and_results_reach_the_log(tiny_settings, tmp_path):
    data = identity_file(tmp_path / "d.jsonl", 20)
    config = JobConfig(
        run="suited",
        data=str(data),
        max_steps=2,
        max_length=128,
        batch_size=2,
        save_steps=1,
        val_fraction=0,
        eval_suites=("identity_heldout_ppl",),
    )
    run_job(config, tiny_settings, progress=False, echo=lambda _: None)
    suites = [r for r in read_log(tiny_settings.adapters_dir / "suited" / "train_log.jsonl") if r["event"] == "suite"]
    assert [(r["step"], r["checkpoint"]) for r in suites] == [(1, "suited/checkpoint-1"), (2, "suited/checkpoint-2")]
    (result,) = suites[-1]["results"]
    assert result["suite"] == "identity_heldout_ppl" and result["metric"] == "response_perplexity"
    assert result["value"] > 1
